package org.ferry.server.internal.store;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Instant;
import java.util.List;
import org.ferry.server.internal.mailbox.InvitationBlob;
import org.ferry.server.internal.mailbox.MailboxId;
import org.ferry.server.internal.mailbox.MailboxRecord;
import org.ferry.server.internal.mailbox.QueuedEnvelope;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class MailboxStoreTest {
  private static final SecureRandom RANDOM = new SecureRandom();
  private static final Instant LATER = Instant.parse("2030-01-01T00:00:00Z");

  @TempDir Path dir;

  private static byte[] id16(int n) {
    byte[] b = new byte[16];
    b[15] = (byte) n;
    return b;
  }

  @Test
  void envelopesComeBackInAppendOrderPerMailboxAndSurviveReopen() throws Exception {
    MailboxId a = MailboxId.random(RANDOM);
    MailboxId b = MailboxId.random(RANDOM);
    try (MailboxStore store = MailboxStore.open(dir)) {
      for (int i = 0; i < 5; i++) {
        store.append(a, id16(i), new byte[1024], LATER);
        store.append(b, id16(100 + i), new byte[4096], LATER);
      }
    }
    try (MailboxStore store = MailboxStore.open(dir)) {
      List<QueuedEnvelope> got = store.read(a, 0, 100).envelopes();
      assertEquals(5, got.size());
      for (int i = 0; i < 5; i++) {
        assertArrayEquals(id16(i), got.get(i).envelopeId());
        assertEquals(1024, got.get(i).body().length);
      }
      assertEquals(5, store.read(b, 0, 100).envelopes().size());
      long after = store.append(a, id16(9), new byte[1024], LATER);
      assertTrue(after > got.get(4).seq(), "positions must keep growing across a reopen");
    }
  }

  @Test
  void queueTotalsCountAppendsAndDeletesAndAreRightAfterReopen() throws Exception {
    MailboxId a = MailboxId.random(RANDOM);
    MailboxId b = MailboxId.random(RANDOM);
    try (MailboxStore store = MailboxStore.open(dir)) {
      long first = store.append(a, id16(0), new byte[1024], LATER);
      store.append(a, id16(1), new byte[1024], LATER);
      store.append(b, id16(2), new byte[4096], LATER);
      store.delete(a, first);
      store.delete(a, first); // gone already: counted once
      assertEquals(2, store.queuedEnvelopes());
      assertEquals(1024 + 4096, store.queuedBytes());
    }
    try (MailboxStore store = MailboxStore.open(dir)) {
      assertEquals(2, store.queuedEnvelopes());
      assertEquals(1024 + 4096, store.queuedBytes());
      assertTrue(store.longProperty("queue", "rocksdb.estimate-num-keys") >= 0);
      assertEquals(-1, store.longProperty("no-such-family", "rocksdb.estimate-num-keys"));
    }
  }

  @Test
  void deletedEnvelopesAreGoneAndReadsRespectCursorAndLimit() throws Exception {
    MailboxId a = MailboxId.random(RANDOM);
    try (MailboxStore store = MailboxStore.open(dir)) {
      long s0 = store.append(a, id16(0), new byte[1024], LATER);
      long s1 = store.append(a, id16(1), new byte[1024], LATER);
      store.append(a, id16(2), new byte[1024], LATER);
      store.delete(a, s0);
      List<QueuedEnvelope> rest = store.read(a, 0, 100).envelopes();
      assertEquals(2, rest.size());
      assertEquals(s1, rest.get(0).seq());
      assertEquals(1, store.read(a, s1 + 1, 100).envelopes().size());
      assertEquals(1, store.read(a, 0, 1).envelopes().size());
    }
  }

  @Test
  void mailboxAndInvitationRecordsRoundTrip() throws Exception {
    MailboxId a = MailboxId.random(RANDOM);
    byte[] owner = new byte[32];
    byte[] cap = new byte[32];
    RANDOM.nextBytes(owner);
    RANDOM.nextBytes(cap);
    try (MailboxStore store = MailboxStore.open(dir)) {
      store.createMailbox(new MailboxRecord(a, owner, cap, LATER));
      store.putInvitation(InvitationBlob.untaken(a, cap, new byte[] {1, 2, 3}, LATER));
    }
    try (MailboxStore store = MailboxStore.open(dir)) {
      MailboxRecord m = store.mailbox(a).orElseThrow();
      assertArrayEquals(owner, m.ownerKey());
      assertArrayEquals(cap, m.sendCapabilityHash());
      assertEquals(LATER, m.createdAt());
      InvitationBlob blob = store.invitation(a).orElseThrow();
      assertArrayEquals(new byte[] {1, 2, 3}, blob.blob());
      assertEquals(false, blob.taken());
      assertTrue(store.mailbox(MailboxId.random(RANDOM)).isEmpty());
    }
  }

  @Test
  void usageCountsFollowAppendsAndDeletesAndSurviveReopen() throws Exception {
    MailboxId a = MailboxId.random(RANDOM);
    MailboxId b = MailboxId.random(RANDOM);
    long first;
    try (MailboxStore store = MailboxStore.open(dir)) {
      first = store.append(a, id16(0), new byte[1024], LATER);
      store.append(a, id16(1), new byte[4096], LATER);
      store.append(b, id16(2), new byte[16384], LATER);
      assertEquals(new MailboxUsage(2, 5120), store.usage(a));
      assertTrue(store.delete(a, first));
      assertEquals(false, store.delete(a, first), "a second delete finds nothing");
      assertEquals(new MailboxUsage(1, 4096), store.usage(a));
    }
    try (MailboxStore store = MailboxStore.open(dir)) {
      assertEquals(new MailboxUsage(1, 4096), store.usage(a));
      assertEquals(new MailboxUsage(1, 16384), store.usage(b));
      assertEquals(4096 + 16384, store.queuedBytes());
      assertEquals(new MailboxUsage(0, 0), store.usage(MailboxId.random(RANDOM)));
    }
  }

  @Test
  void anEnvelopeThatIsNotABucketSizeIsNeverStored() throws Exception {
    MailboxId a = MailboxId.random(RANDOM);
    try (MailboxStore store = MailboxStore.open(dir)) {
      for (int size : new int[] {0, 1023, 1025, 2048, 65537}) {
        assertThrows(IllegalArgumentException.class, () -> store.append(a, id16(0), new byte[size], LATER));
      }
      assertEquals(new MailboxUsage(0, 0), store.usage(a));
      assertEquals(0, store.read(a, 0, 10).envelopes().size());
    }
  }

  @Test
  void expiredEnvelopesAreDeletedOldestFirstAndOnlyThoseDue() throws Exception {
    MailboxId a = MailboxId.random(RANDOM);
    Instant t0 = Instant.parse("2030-01-01T00:00:00Z");
    try (MailboxStore store = MailboxStore.open(dir)) {
      store.append(a, id16(0), new byte[1024], t0.plusSeconds(20));
      long acked = store.append(a, id16(1), new byte[1024], t0.plusSeconds(5));
      store.append(a, id16(2), new byte[1024], t0.plusSeconds(10));
      store.delete(a, acked);
      assertEquals(0, store.deleteExpiredEnvelopes(t0.plusSeconds(9)));
      assertEquals(1, store.deleteExpiredEnvelopes(t0.plusSeconds(10)));
      List<QueuedEnvelope> left = store.read(a, 0, 10).envelopes();
      assertEquals(1, left.size());
      assertArrayEquals(id16(0), left.get(0).envelopeId());
      assertEquals(1, store.deleteExpiredEnvelopes(t0.plusSeconds(60)));
      assertEquals(new MailboxUsage(0, 0), store.usage(a));
    }
  }
}
