package org.ferry.server.internal.store;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.security.SecureRandom;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import org.ferry.server.internal.mailbox.MailboxId;
import org.ferry.server.internal.mailbox.QueuedEnvelope;
import org.junit.jupiter.api.Test;

class MailboxSequencerTest {
  private static final SecureRandom RANDOM = new SecureRandom();
  private final MailboxId m = MailboxId.random(RANDOM);
  private final MailboxId n = MailboxId.random(RANDOM);

  private static QueuedEnvelope stored(MailboxId box, long seq) {
    return new QueuedEnvelope(box, seq, new byte[16], new byte[1024], Instant.EPOCH);
  }

  @Test
  void positionsKeepGrowingAfterRestartWithoutScanning() {
    AtomicLong persisted = new AtomicLong();
    MailboxSequencer first = new MailboxSequencer(0, persisted::set);
    long last = 0;
    for (int i = 0; i < 10; i++) {
      MailboxSequencer.Begun b = first.begin(m);
      first.finish(m, b, stored(m, b.seq()));
      last = b.seq();
    }
    // A restart knows only the persisted ceiling, never the positions used.
    MailboxSequencer second = new MailboxSequencer(persisted.get(), persisted::set);
    long next = second.begin(m).seq();
    assertTrue(next > last, "after restart " + next + " must exceed " + last);
  }

  @Test
  void ceilingIsPersistedBeforeAPositionOfANewBlockIsHandedOut() {
    List<Long> ceilings = new ArrayList<>();
    MailboxSequencer seq = new MailboxSequencer(0, ceilings::add);
    for (long i = 0; i < MailboxSequencer.BLOCK + 2; i++) {
      MailboxSequencer.Begun b = seq.begin(i % 2 == 0 ? m : n);
      seq.finish(i % 2 == 0 ? m : n, b, null);
      long ceiling = ceilings.get(ceilings.size() - 1);
      assertTrue(b.seq() < ceiling, "position " + b.seq() + " handed out at or above ceiling " + ceiling);
    }
    assertEquals(2, ceilings.size());
  }

  @Test
  void readersOfAMailboxSeeNothingAtOrAboveItsOwnWriteInProgress() {
    MailboxSequencer seq = new MailboxSequencer(0, c -> { });
    MailboxSequencer.Begun slow = seq.begin(m);
    MailboxSequencer.Begun fast = seq.begin(m);
    seq.finish(m, fast, stored(m, fast.seq()));
    assertEquals(slow.seq() - 1, seq.visibleUpTo(m), "the finished later write must stay hidden");
    seq.finish(m, slow, stored(m, slow.seq()));
    assertEquals(fast.seq(), seq.visibleUpTo(m));
  }

  @Test
  void aFinishedWriteIsVisibleWhileAnEarlierWriteToAnotherMailboxIsInProgress() {
    // The stall of issue 10: with one watermark for all mailboxes, M's finished write stayed
    // hidden behind N's slower one, and N's completion woke only N's readers.
    MailboxSequencer seq = new MailboxSequencer(0, c -> { });
    MailboxSequencer.Begun slowInN = seq.begin(n);
    MailboxSequencer.Begun inM = seq.begin(m);
    seq.finish(m, inM, stored(m, inM.seq()));
    assertTrue(seq.visibleUpTo(m) >= inM.seq(), "M's finished write must be readable at once");
    assertEquals(slowInN.seq() - 1, seq.visibleUpTo(n));
    seq.finish(n, slowInN, null);
  }

  @Test
  void eachWriteNamesItsMailboxsPreviousPositionAcrossOtherMailboxesWrites() {
    MailboxSequencer seq = new MailboxSequencer(0, c -> { });
    MailboxSequencer.Begun first = seq.begin(m);
    MailboxSequencer.Begun other = seq.begin(n);
    MailboxSequencer.Begun second = seq.begin(m);
    assertEquals(first.seq(), second.previous());
    assertTrue(first.previous() < first.seq());
    seq.finish(m, first, null);
    seq.finish(n, other, null);
    seq.finish(m, second, null);
    // With no lane left, the next write's previous is the high-water mark (here M's own last
    // position): nothing of M lies between them.
    MailboxSequencer.Begun third = seq.begin(m);
    assertEquals(second.seq(), third.previous());
  }

  @Test
  void watchersHearEveryWriteThatFinishesAfterTheWatchBeganStoredOrFailed() {
    MailboxSequencer seq = new MailboxSequencer(0, c -> { });
    MailboxSequencer.Begun before = seq.begin(m);
    List<long[]> heard = new ArrayList<>();
    List<QueuedEnvelope> envelopes = new ArrayList<>();
    MailboxSequencer.Watch watch = seq.watch(m, (s, previous, envelope) -> {
      heard.add(new long[] {s, previous});
      envelopes.add(envelope);
    });
    assertEquals(before.seq(), watch.from(), "a write begun before the watch is at or below from()");
    MailboxSequencer.Begun stored = seq.begin(m);
    MailboxSequencer.Begun failed = seq.begin(m);
    seq.finish(m, failed, null);
    seq.finish(m, stored, stored(m, stored.seq()));
    seq.finish(m, before, stored(m, before.seq()));
    MailboxSequencer.Begun elsewhere = seq.begin(n);
    seq.finish(n, elsewhere, null);
    assertEquals(3, heard.size(), "writes to other mailboxes are not told");
    assertEquals(failed.seq(), heard.get(0)[0]);
    assertEquals(stored.seq(), heard.get(0)[1], "a failed write still names its previous position");
    assertNull(envelopes.get(0));
    assertNotNull(envelopes.get(1));
    watch.close();
    MailboxSequencer.Begun after = seq.begin(m);
    seq.finish(m, after, null);
    assertEquals(3, heard.size(), "a closed watch hears nothing more");
  }

  @Test
  void lanesGoWhenNoWriteIsInProgressAndNobodyWatches() {
    MailboxSequencer seq = new MailboxSequencer(0, c -> { });
    MailboxSequencer.Begun b = seq.begin(m);
    MailboxSequencer.Watch watch = seq.watch(n, (s, p, e) -> { });
    assertEquals(2, seq.lanes());
    seq.finish(m, b, null);
    assertEquals(1, seq.lanes());
    watch.close();
    watch.close();
    assertEquals(0, seq.lanes());
  }
}
