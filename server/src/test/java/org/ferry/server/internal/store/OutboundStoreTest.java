package org.ferry.server.internal.store;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Instant;
import java.util.List;
import org.ferry.proto.RoutingSeal;
import org.ferry.server.internal.mailbox.MailboxId;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class OutboundStoreTest {
  private static final SecureRandom RANDOM = new SecureRandom();
  private static final Instant LATER = Instant.parse("2030-01-01T00:00:00Z");
  @TempDir Path dir;

  private static byte[] bytes(int n) {
    byte[] b = new byte[n];
    RANDOM.nextBytes(b);
    return b;
  }

  private static OutboundItem item(int bodyLength, MailboxId forwarder) {
    return new OutboundItem("127.0.0.1:7443#x", bytes(16), 7, bytes(RoutingSeal.SEALED_LENGTH), bytes(bodyLength),
        LATER, forwarder);
  }

  @Test
  void aBatchStopsBeforeTheItemThatWouldTakeItOverItsWeight() throws Exception {
    byte[] peer = bytes(32);
    MailboxId forwarder = MailboxId.random(RANDOM);
    try (MailboxStore store = MailboxStore.open(dir)) {
      for (int i = 0; i < 5; i++) {
        store.enqueueOutbound(peer, item(16384, forwarder)).join();
      }
      store.enqueueOutbound(peer, item(65536, forwarder)).join();
      long cap = 112 * 1024;
      List<OutboundEntry> batch = store.readOutbound(peer, false, 256, cap);
      assertEquals(5, batch.size());
      assertTrue(batch.stream().mapToLong(e -> MailboxStore.wireWeight(e.item())).sum() <= cap);
      // A lone item heavier than the cap still goes, alone.
      assertEquals(1, store.readOutbound(peer, true, 256, 1000).size());
    }
  }

  @Test
  void removingAnItemAndAppendingItsOutcomeIsOneWriteAndHappensOnce() throws Exception {
    byte[] peer = bytes(32);
    MailboxId forwarder = MailboxId.random(RANDOM);
    try (MailboxStore store = MailboxStore.open(dir)) {
      store.enqueueOutbound(peer, item(1024, forwarder)).join();
      OutboundEntry entry = store.readOutbound(peer, false, 10, Long.MAX_VALUE).get(0);
      assertEquals(1024, store.outboundBytes());
      OutcomeEnvelope outcome = new OutcomeEnvelope(forwarder, bytes(16), bytes(1024), LATER);
      assertTrue(store.completeOutbound(peer, entry.seq(), outcome).join());
      // The second completion (an expiry racing a delivery) finds nothing and writes no outcome.
      assertFalse(store.completeOutbound(peer, entry.seq(), outcome).join());
      assertEquals(1, store.usage(forwarder).count());
      assertEquals(0, store.outboundBytes());
      assertTrue(store.outboundCounts().isEmpty());
    }
    try (MailboxStore reopened = MailboxStore.open(dir)) {
      assertEquals(0, reopened.outboundBytes());
      assertEquals(1, reopened.usage(forwarder).count());
    }
  }

  @Test
  void aDeliveredItemIdIsRememberedUntilItsTimeAndThenForgotten() throws Exception {
    byte[] peer = bytes(32);
    byte[] itemId = bytes(16);
    MailboxId mailbox = MailboxId.random(RANDOM);
    Instant until = Instant.parse("2026-03-01T00:10:00Z");
    try (MailboxStore store = MailboxStore.open(dir)) {
      store.appendAsync(mailbox, itemId, bytes(1024), until.minusSeconds(600), new SeenMark(peer, itemId, until))
          .join();
      assertEquals(java.util.Optional.of(until), store.seenUntil(peer, itemId));
      assertTrue(store.seenUntil(bytes(32), itemId).isEmpty());
      assertEquals(0, store.deleteExpiredSeen(until.minusMillis(1)));
      assertTrue(store.seenUntil(peer, itemId).isPresent());
      assertEquals(1, store.deleteExpiredSeen(until));
      assertTrue(store.seenUntil(peer, itemId).isEmpty());
    }
  }
}
