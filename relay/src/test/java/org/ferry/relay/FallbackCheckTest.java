package org.ferry.relay;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A fallback that cannot work is refused at start-up, before anything is written. */
class FallbackCheckTest {
  private static final Set<Carrier> WEB = Set.of(Carrier.WS, Carrier.POLL);
  private static final InetSocketAddress WEB_PORT = new InetSocketAddress("127.0.0.1", 47443);

  private static String refusal(InetSocketAddress fallback, InetSocketAddress webPort, Set<Carrier> carriers) {
    return assertThrows(IllegalArgumentException.class,
        () -> Relay.checkFallback(fallback, webPort, carriers)).getMessage();
  }

  @Test
  void aHostThatDoesNotResolveOrPortZeroIsRefused() {
    assertTrue(refusal(new InetSocketAddress("no.such.host.invalid", 80), WEB_PORT, WEB).contains("cannot be resolved"));
    assertTrue(refusal(new InetSocketAddress("127.0.0.1", 0), WEB_PORT, WEB).contains("not 0"));
  }

  @Test
  void aFallbackWithoutAWebCarrierIsRefused() {
    assertTrue(refusal(new InetSocketAddress("127.0.0.1", 8080), WEB_PORT, Set.of(Carrier.OBFS4)).contains("ws and poll"));
  }

  @Test
  void aFallbackThatIsTheRelaysOwnWebPortIsRefused() {
    assertTrue(refusal(new InetSocketAddress("127.0.0.1", 47443), WEB_PORT, WEB).contains("own web port"));
    assertTrue(refusal(new InetSocketAddress("127.0.0.1", 47443), new InetSocketAddress("0.0.0.0", 47443), WEB)
        .contains("own web port"));
    assertDoesNotThrow(() -> Relay.checkFallback(new InetSocketAddress("127.0.0.1", 8080), WEB_PORT, WEB));
  }

  @Test
  void aRefusedFallbackWritesNothing(@TempDir Path dir) {
    Path data = dir.resolve("relay");
    assertThrows(IllegalArgumentException.class, () -> Relay.builder()
        .dataDirectory(data)
        .listen(WEB_PORT)
        .upstream(new InetSocketAddress("127.0.0.1", 47444))
        .carriers(WEB)
        .fallback(new InetSocketAddress("127.0.0.1", 47443))
        .start());
    assertTrue(Files.notExists(data), "nothing written");
  }
}
