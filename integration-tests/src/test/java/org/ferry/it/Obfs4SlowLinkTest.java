package org.ferry.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.EnumSet;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.ferry.it.censor.Censor;
import org.ferry.it.censor.Censor.Rule;
import org.ferry.proto.BridgeLine;
import org.ferry.proto.ServerAddress;
import org.ferry.relay.Carrier;
import org.ferry.relay.Relay;
import org.ferry.sdk.FerryClient;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * On a slow link (8 kbit/s, a satellite hop) opening an obfs4 carrier alone can take longer than
 * 10 s: its handshake pads each side up to about 8 KB. The call's own deadline, not a fixed
 * 10 s, decides how long that may take.
 */
class Obfs4SlowLinkTest {
  @TempDir Path dir;
  private final Closer closer = new Closer();

  @AfterEach
  void closeAll() throws Exception {
    closer.close();
  }

  /**
   * A link whose first upload bytes take {@code delay} to get through, as an obfs4 handshake of
   * 8 KB takes at 8 kbit/s; everything after goes at once (so the server's side of TLS, with its
   * own clock, is not what is tested here).
   */
  private static final class SlowStart implements AutoCloseable {
    private final ServerSocket listener;
    private final List<Socket> sockets = new CopyOnWriteArrayList<>();
    private final ScheduledExecutorService link = Executors.newScheduledThreadPool(16);

    SlowStart(InetSocketAddress target, Duration delay) throws IOException {
      listener = new ServerSocket(0, 50, InetAddress.getLoopbackAddress());
      Thread t = new Thread(() -> {
        while (!listener.isClosed()) {
          try {
            Socket client = listener.accept();
            Socket server = new Socket(target.getAddress(), target.getPort());
            sockets.add(client);
            sockets.add(server);
            long openAt = System.nanoTime() + delay.toNanos();
            pump(server, client, 0);
            pump(client, server, openAt);
          } catch (IOException e) {
            return;
          }
        }
      }, "slow-start");
      t.setDaemon(true);
      t.start();
    }

    /** Copies {@code from} to {@code to}, holding the first byte (and all after it) until {@code openAt}. */
    private void pump(Socket from, Socket to, long openAt) {
      Thread t = new Thread(() -> {
        try {
          int first = from.getInputStream().read();
          if (first < 0) {
            to.shutdownOutput();
            return;
          }
          // The bytes spend this long on the link; the rest of the stream follows them at once.
          link.schedule(() -> {
            try {
              to.getOutputStream().write(first);
              from.getInputStream().transferTo(to.getOutputStream());
              to.shutdownOutput();
            } catch (IOException ignored) {
              // Closed.
            }
            return null;
          }, Math.max(0, openAt - System.nanoTime()), TimeUnit.NANOSECONDS);
        } catch (IOException ignored) {
          // Closed.
        }
      }, "slow-start-pump");
      t.setDaemon(true);
      t.start();
    }

    int port() {
      return listener.getLocalPort();
    }

    @Override
    public void close() throws IOException {
      link.shutdownNow();
      listener.close();
      for (Socket s : sockets) {
        s.close();
      }
    }
  }

  @Test
  void anObfs4CarrierThatTakesLongerThanTenSecondsToOpenCarriesTheCallWithinItsDeadline() throws Exception {
    String obfs4proxy = ExternalTools.require("obfs4proxy", "obfs4proxy");
    RunningServer server = closer.add(new RunningServer(dir.resolve("server")));
    Relay relay = closer.add(Relay.builder().dataDirectory(dir.resolve("relay"))
        .listen(new InetSocketAddress("127.0.0.1", 0))
        .upstream(new InetSocketAddress("127.0.0.1", server.address().port()))
        .carriers(EnumSet.of(Carrier.OBFS4)).obfs4proxy(obfs4proxy).start());
    Censor direct = closer.add(Censor.start(new InetSocketAddress("127.0.0.1", server.address().port())).block(Rule.BLOCK_PORT));
    SlowStart slow = closer.add(new SlowStart(relay.obfs4Address().orElseThrow(), Duration.ofSeconds(12)));
    BridgeLine printed = relay.bridgeLines().get(0);
    BridgeLine line = new BridgeLine(printed.kind(), "127.0.0.1", slow.port(), false, "", printed.pin(), printed.params());
    byte[] key = new byte[32];
    new SecureRandom().nextBytes(key);
    FerryClient c = closer.add(FerryClient.builder().dataDirectory(dir.resolve("c")).storageKey(key)
        .callTimeout(Duration.ofSeconds(40)).obfs4proxy(obfs4proxy).build());
    long started = System.nanoTime();
    c.initialize(new ServerAddress("127.0.0.1", direct.port(), server.address().fingerprint()), "", List.of(line.toString()));
    long tookMillis = (System.nanoTime() - started) / 1_000_000;
    assertTrue(tookMillis > 10_000, "the carrier took longer to open than the old fixed 10 s: " + tookMillis + " ms");
    assertEquals("obfs4", c.networkStatus().get(0).inUse().map(l -> l.split(" ")[0]).orElse("none"));
  }
}
