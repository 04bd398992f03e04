package org.ferry.it.crash;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** The harness tells lost, stranded and duplicate envelopes apart, and fails on each. */
class CrashLedgerTest {
  private final CrashLedger ledger = new CrashLedger();

  @Test
  void envelopesDeliveredToLiveReceiversPass() {
    ledger.acked("a");
    ledger.delivered("a", "m", 1, CrashLedger.Phase.LIVE);
    CrashLedger.Result r = ledger.result(1);
    assertTrue(r.passed(), r.line());
    assertEquals(1, r.delivered());
  }

  @Test
  void anEnvelopeNeverDeliveredIsLost() {
    ledger.acked("a");
    CrashLedger.Result r = ledger.result(1);
    assertEquals(1, r.lost());
    assertFalse(r.passed(), r.line());
  }

  @Test
  void anEnvelopeFirstDeliveredAfterTheFinalRestartIsStranded() {
    ledger.acked("a");
    ledger.delivered("a", "m", 1, CrashLedger.Phase.FINAL);
    CrashLedger.Result r = ledger.result(1);
    assertEquals(1, r.stranded());
    assertEquals(0, r.lost());
    assertFalse(r.passed(), r.line());
  }

  @Test
  void aDeliveryAfterTheServerConfirmedItsAckIsADuplicate() {
    ledger.acked("a");
    ledger.delivered("a", "m", 1, CrashLedger.Phase.LIVE);
    ledger.confirmed("m", 1);
    ledger.delivered("a", "m", 1, CrashLedger.Phase.LIVE);
    CrashLedger.Result r = ledger.result(1);
    assertEquals(1, r.duplicates());
    assertFalse(r.passed(), r.line());
  }

  @Test
  void aRedeliveryBeforeAnyConfirmationIsAllowedAndCounted() {
    ledger.acked("a");
    ledger.delivered("a", "m", 1, CrashLedger.Phase.LIVE);
    ledger.delivered("a", "m", 1, CrashLedger.Phase.LIVE);
    CrashLedger.Result r = ledger.result(1);
    assertEquals(1, r.redelivered());
    assertTrue(r.passed(), r.line());
  }

  @Test
  void anEnvelopeDeliveredUnderTwoDeliveryIdsWasStoredTwiceAndFails() {
    ledger.acked("a");
    ledger.delivered("a", "m", 1, CrashLedger.Phase.LIVE);
    ledger.delivered("a", "m", 1, CrashLedger.Phase.LIVE);
    assertTrue(ledger.result(1).passed(), "a redelivery of the same stored copy is allowed");
    ledger.delivered("a", "m", 2, CrashLedger.Phase.LIVE);
    CrashLedger.Result r = ledger.result(1);
    assertEquals(1, r.storedTwice());
    assertFalse(r.passed(), r.line());
  }
}
