package org.ferry.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLSocket;
import org.ferry.it.censor.Censor;
import org.ferry.proto.BridgeLine;
import org.ferry.relay.Relay;
import org.ferry.relay.internal.http.Decoy;
import org.ferry.sdk.FerryClient;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A censor that suspects a bridge probes it. 1,000 probes (random bytes; replayed and truncated
 * real handshakes recorded off the wire; TLS, HTTP/1.1, HTTP/2 and gRPC openings; guessed paths,
 * with and without WebSocket upgrades) get not one byte from the obfs4 port, and from the web
 * port only what a fresh nginx would show: its pages, or a TLS handshake where the probe began
 * one.
 */
class ActiveProbingTest {
  private static final int PROBES_PER_PORT = 500;
  private static final Duration WAIT = Duration.ofMillis(1500);
  private static final byte[] H2_PREFACE = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".getBytes(StandardCharsets.US_ASCII);

  @TempDir Path dir;
  private final Closer closer = new Closer();
  private final Random random = new Random(4);

  @AfterEach
  void closeAll() throws Exception {
    closer.close();
  }

  @Test
  void probesGetNothingFromObfs4AndOnlyTheDecoyFromTheWebPort() throws Exception {
    String obfs4proxy = ExternalTools.require("obfs4proxy", "obfs4proxy");
    RunningServer server = closer.add(new RunningServer(dir.resolve("server")));
    Relay relay = closer.add(Relay.builder()
        .dataDirectory(dir.resolve("relay"))
        .listen(new InetSocketAddress("127.0.0.1", 0))
        .upstream(new InetSocketAddress("127.0.0.1", server.address().port()))
        .obfs4proxy(obfs4proxy)
        .start());
    InetSocketAddress web = relay.webAddress();
    InetSocketAddress obfs4 = relay.obfs4Address().orElseThrow();

    // Real handshakes, recorded by a wiretap on the way to each port, for replaying.
    Censor webTap = closer.add(Censor.start(web).record());
    Censor obfs4Tap = closer.add(Censor.start(obfs4).record());
    BridgeLine ws = relay.bridgeLines().get(0);
    BridgeLine ob = relay.bridgeLines().get(2);
    for (BridgeLine line : List.of(
        new BridgeLine(ws.kind(), "127.0.0.1", webTap.port(), true, ws.path(), ws.pin(), Map.of()),
        new BridgeLine(ob.kind(), "127.0.0.1", obfs4Tap.port(), false, "", java.util.Optional.empty(), ob.params()))) {
      try (FerryClient c = TestClients.open(dir, "client-" + line.kind())) {
        c.initialize(new org.ferry.proto.ServerAddress("127.0.0.1", 1, server.address().fingerprint()), "",
            List.of(line.toString()));
      }
    }
    List<byte[]> webHandshakes = webTap.recorded();
    List<byte[]> obfs4Handshakes = obfs4Tap.recorded();
    assertTrue(!webHandshakes.isEmpty() && !obfs4Handshakes.isEmpty(), "handshakes were recorded");

    ExecutorService pool = Executors.newFixedThreadPool(100);
    try {
      List<Future<String>> verdicts = new ArrayList<>();
      for (int i = 0; i < PROBES_PER_PORT; i++) {
        byte[] probe = rawProbe(i, obfs4Handshakes);
        verdicts.add(pool.submit(() -> {
          byte[] answer = exchange(obfs4, probe);
          return answer.length == 0 ? null : "obfs4 port answered " + answer.length + " bytes to probe " + describe(probe);
        }));
      }
      for (int i = 0; i < PROBES_PER_PORT; i++) {
        int n = i;
        verdicts.add(pool.submit(() -> webProbe(web, n, webHandshakes)));
      }
      List<String> failures = new ArrayList<>();
      for (Future<String> f : verdicts) {
        String v = f.get();
        if (v != null) {
          failures.add(v);
        }
      }
      assertEquals(List.of(), failures.subList(0, Math.min(5, failures.size())), failures.size() + " probes got a tell");
    } finally {
      pool.shutdownNow();
    }
    assertEquals(0, relay.pollSessions(), "no probe opened a polling session");
  }

  /** Probe {@code i} for a raw port: random bytes, replays, truncations, well-known openings. */
  private byte[] rawProbe(int i, List<byte[]> handshakes) {
    byte[] handshake = handshakes.get(i % handshakes.size());
    return switch (i % 8) {
      case 0, 1 -> randomBytes(1 + random.nextInt(i % 16 == 0 ? 16_384 : 2_048));
      case 2 -> handshake.clone();
      case 3 -> Arrays.copyOf(handshake, 1 + random.nextInt(handshake.length));
      case 4 -> H2_PREFACE.clone();
      case 5 -> grpcOpening();
      case 6 -> ("GET /" + randomPath() + " HTTP/1.1\r\nHost: x\r\n\r\n").getBytes(StandardCharsets.US_ASCII);
      default -> tlsClientHelloLike();
    };
  }

  /** One probe of the web port; returns a complaint, or null if it saw only the decoy. */
  private String webProbe(InetSocketAddress web, int i, List<byte[]> handshakes) throws Exception {
    String path = "/" + randomPath();
    String upgrade = i % 3 == 0
        ? "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: "
            + Base64.getEncoder().encodeToString(randomBytes(16)) + "\r\n"
        : "";
    String method = i % 4 == 1 ? "POST" : "GET";
    byte[] body = method.equals("POST") ? randomBytes(27 + random.nextInt(64)) : new byte[0];
    byte[] request = concat((method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" + upgrade
        + "Content-Length: " + body.length + "\r\nConnection: close\r\n\r\n").getBytes(StandardCharsets.US_ASCII), body);
    return switch (i % 5) {
      case 0 -> checkHttp("https " + method + " " + (upgrade.isEmpty() ? "" : "upgrade "), httpsExchange(web, request));
      case 1 -> checkHttp("http " + method, exchange(web, request));
      default -> {
        byte[] probe = rawProbe(i, handshakes);
        byte[] answer = exchange(web, probe);
        boolean tlsProbe = probe.length > 0 && probe[0] == 0x16;
        if (answer.length == 0 || (tlsProbe && (answer[0] == 0x16 || answer[0] == 0x15))) {
          yield null;
        }
        yield checkHttp("raw " + describe(probe), answer);
      }
    };
  }

  private static String checkHttp(String what, byte[] answer) {
    if (answer.length == 0) {
      return null;
    }
    String text = new String(answer, StandardCharsets.ISO_8859_1);
    int split = text.indexOf("\r\n\r\n");
    if (!text.startsWith("HTTP/1.1 ") || split < 0) {
      return what + ": not an HTTP answer: " + text.substring(0, Math.min(40, text.length()));
    }
    String head = text.substring(0, split);
    String body = text.substring(split + 4);
    if (head.startsWith("HTTP/1.1 101") || head.contains("octet-stream") || !head.contains("\r\nServer: nginx\r\n")
        || !Decoy.bodies().contains(body)) {
      return what + ": answer is not the decoy: " + head.lines().findFirst().orElse("");
    }
    return null;
  }

  /** Sends {@code probe} and collects what comes back until close or a quiet spell. */
  private static byte[] exchange(InetSocketAddress to, byte[] probe) throws IOException {
    try (Socket s = new Socket()) {
      s.connect(to, 2000);
      s.setSoTimeout((int) WAIT.toMillis());
      s.getOutputStream().write(probe);
      s.getOutputStream().flush();
      return readAll(s.getInputStream());
    }
  }

  private static byte[] httpsExchange(InetSocketAddress to, byte[] request) throws Exception {
    SSLContext tls = TrustingTls.context();
    try (Socket raw = new Socket()) {
      raw.connect(to, 2000);
      try (SSLSocket s = (SSLSocket) tls.getSocketFactory().createSocket(raw, to.getHostString(), to.getPort(), true)) {
        s.setSoTimeout((int) WAIT.toMillis());
        s.getOutputStream().write(request);
        s.getOutputStream().flush();
        return readAll(s.getInputStream());
      }
    }
  }

  private static byte[] readAll(InputStream in) throws IOException {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    byte[] buf = new byte[8192];
    try {
      for (int n; (n = in.read(buf)) >= 0; ) {
        out.write(buf, 0, n);
      }
    } catch (SocketTimeoutException | java.net.SocketException e) {
      // Quiet, or reset: what came so far is the answer.
    }
    return out.toByteArray();
  }

  private byte[] grpcOpening() {
    // Preface, an empty SETTINGS frame, and the start of a HEADERS frame for a Ferry method.
    byte[] settings = {0, 0, 0, 4, 0, 0, 0, 0, 0};
    byte[] path = "/ferry.v1.Mailboxes/Send".getBytes(StandardCharsets.US_ASCII);
    byte[] headers = concat(new byte[] {0, 0, (byte) (path.length + 2), 1, 4, 0, 0, 0, 1, 0x44, (byte) path.length}, path);
    return concat(concat(H2_PREFACE, settings), headers);
  }

  private byte[] tlsClientHelloLike() {
    byte[] b = randomBytes(200 + random.nextInt(300));
    b[0] = 0x16;
    b[1] = 0x03;
    b[2] = 0x01;
    b[3] = (byte) ((b.length - 5) >> 8);
    b[4] = (byte) (b.length - 5);
    b[5] = 0x01;
    return b;
  }

  private String randomPath() {
    String[] guesses = {"", "index.html", "ws", "websocket", "api", "poll", "admin", "ferry", ".well-known/x"};
    int pick = random.nextInt(guesses.length + 1);
    return pick < guesses.length ? guesses[pick]
        : Base64.getUrlEncoder().withoutPadding().encodeToString(randomBytes(16));
  }

  private byte[] randomBytes(int n) {
    byte[] b = new byte[n];
    synchronized (random) {
      random.nextBytes(b);
    }
    return b;
  }

  private static byte[] concat(byte[] a, byte[] b) {
    byte[] c = Arrays.copyOf(a, a.length + b.length);
    System.arraycopy(b, 0, c, a.length, b.length);
    return c;
  }

  private static String describe(byte[] probe) {
    return probe.length + " bytes starting " + java.util.HexFormat.of().formatHex(probe, 0, Math.min(8, probe.length));
  }
}
