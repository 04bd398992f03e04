package org.ferry.it.crash;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.ferry.it.load.ServerProcess;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The CI versions of {@code integration-tests/federation-test.sh}: items forwarded from home
 * server A to mailboxes on server B, with both killed at random, or B down for a minute while A
 * is killed and restarted: every item A acknowledged reaches B's store exactly once, and A tells
 * its sender so.
 */
class FederatedHarnessTest {
  private static final int CYCLES = Integer.getInteger("ferry.federation.cycles", 6);
  private static final int OUTAGE_SECONDS = Integer.getInteger("ferry.federation.outage", 60);

  @TempDir Path dir;

  private FederatedHarness harness() {
    return new FederatedHarness(
        ServerProcess.Command.fromClassPath(dir.resolve("a"), List.of("-Xmx256m"), List.of()),
        ServerProcess.Command.fromClassPath(dir.resolve("b"), List.of("-Xmx256m"), FederatedHarness.DESTINATION_ARGS),
        42);
  }

  private static void assertExactlyOnce(FederatedHarness.Outcome r, long minimum) {
    System.out.println(r.line());
    CrashLedger.Result l = r.ledger();
    assertTrue(l.acked() >= minimum, "too little load to prove anything: " + r.line());
    assertEquals(0, l.lost(), r.line());
    assertEquals(0, l.stranded(), r.line());
    assertEquals(0, l.duplicates(), r.line());
    assertEquals(0, l.storedTwice(), r.line());
    assertEquals(l.acked(), l.delivered(), r.line());
    assertEquals(0, r.failedOutcomes(), r.line());
    assertEquals(l.acked(), r.deliveredOutcomes(), "every acknowledged item's sender heard it was delivered: " + r.line());
  }

  @Test
  void itemsForwardedWhileBothServersAreKilledAtRandomReachTheDestinationExactlyOnce() throws Exception {
    assertExactlyOnce(harness().crash(CYCLES), (long) FederatedHarness.MIN_ACKS_PER_CYCLE * CYCLES);
  }

  @Test
  void itemsForwardedWhileTheDestinationIsDownForAMinuteAndTheHomeServerRestartsArriveExactlyOnce()
      throws Exception {
    assertExactlyOnce(harness().outage(Duration.ofSeconds(OUTAGE_SECONDS)), 100);
  }
}
