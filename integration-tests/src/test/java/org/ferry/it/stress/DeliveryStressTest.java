package org.ferry.it.stress;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.ferry.it.load.ServerProcess;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The CI version of {@code integration-tests/stress-test.sh}: against a real server process, an
 * acknowledged envelope always reaches its owner's connected stream in bounded time, and a large
 * backlog drains into a fresh stream without stalling.
 */
class DeliveryStressTest {
  private static final long SECONDS = Long.getLong("ferry.stress.seconds", 6);

  @TempDir Path dir;
  private ServerProcess server;

  @BeforeEach
  void startServer() throws Exception {
    server = ServerProcess.start(ServerProcess.Command.fromClassPath(
        dir.resolve("server"), List.of("-Xmx512m"), DeliveryStress.openLimits()), 0);
  }

  @AfterEach
  void stopServer() {
    server.close();
  }

  @Test
  void everyAcknowledgedEnvelopeReachesItsConnectedReceiverWithinFiveSeconds() throws Exception {
    DeliveryStress.ConcurrentResult r = DeliveryStress.concurrent(
        server.address(), 32, 64, Duration.ofSeconds(SECONDS), Duration.ofSeconds(5));
    System.out.println(r.line());
    assertTrue(r.acked() >= 1000, "too little load to prove anything: " + r.line());
    assertTrue(r.passed(), r.line());
  }

  @Test
  void largeBacklogDrainsIntoAFreshReceiverWithoutPausing() throws Exception {
    for (int i = 0; i < 3; i++) {
      DeliveryStress.DrainResult d = DeliveryStress.drain(server.address(), 10_000, Duration.ofSeconds(3));
      System.out.println(d.line());
      assertTrue(d.passed(Duration.ofSeconds(3)), d.line());
    }
  }
}
