package org.ferry.server.internal.store;

import java.util.ArrayList;
import java.util.List;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.LongConsumer;
import org.ferry.server.internal.mailbox.MailboxId;
import org.ferry.server.internal.mailbox.QueuedEnvelope;

/**
 * Hands out queue positions, tracks the writes still in progress per mailbox, and tells the
 * watchers of a mailbox about every write to it that finished.
 *
 * <p><b>Positions</b> only grow, across all mailboxes and across restarts, without scanning the
 * queue: they are reserved in blocks of {@link #BLOCK}, and a block's end is persisted (synced)
 * before its first position is used, so after a crash the next start resumes past anything that
 * could have been written.
 *
 * <p><b>Visibility is per mailbox.</b> A reader of mailbox M looks only below M's oldest write
 * still in progress ({@link #visibleUpTo}): a position below that will never appear later in M.
 * Writes to other mailboxes never hide anything in M, so the completion of M's last write is
 * always enough to make all of M readable. (A global watermark, as this class had before, made a
 * finished write to M invisible until an earlier write to another mailbox finished, and that
 * completion woke only the other mailbox's readers: envelopes were stranded.)
 *
 * <p><b>Lanes.</b> While a mailbox has writes in progress or watchers, it has a lane in memory
 * with the last position given out in it. Each write learns the position before it in its
 * mailbox ({@link Begun#previous}), so a watcher that has handled everything up to that position
 * can deliver the write without reading the store, in order, even when writes finish out of
 * order. A lane is made with {@code previous} set to the highest position handed out so far, so
 * the chain is exact: no position of the mailbox lies between a write and its {@code previous}.
 * Lanes go as soon as they have neither writes in progress nor watchers.
 */
public final class MailboxSequencer {
  static final long BLOCK = 1L << 16;

  /** Told about each write to a watched mailbox once it finished, on the writer's thread. */
  public interface Watcher {
    /**
     * {@code envelope} is the stored envelope, or null when the write failed and the position
     * stays empty. Must not block: it is called on the writer's thread after the write.
     */
    void finished(long seq, long previous, QueuedEnvelope envelope);
  }

  /** A position handed out for a write, and the mailbox's position before it. */
  record Begun(long seq, long previous) {}

  /** A registered watcher; {@link #from} is the mailbox's last position at registration. */
  public interface Watch extends AutoCloseable {
    /**
     * Every write at a position above this one finishes after the registration and is told to
     * the watcher; writes at or below it may have finished before and are read from the store.
     */
    long from();

    @Override
    void close();
  }

  private static final class Lane {
    long last;
    final TreeSet<Long> inProgress = new TreeSet<>();
    final List<Watcher> watchers = new ArrayList<>(1);

    Lane(long last) {
      this.last = last;
    }

    boolean idle() {
      return inProgress.isEmpty() && watchers.isEmpty();
    }
  }

  private final LongConsumer persistCeiling;
  private final ConcurrentHashMap<MailboxId, Lane> lanes = new ConcurrentHashMap<>();
  private long next;
  private long ceiling;

  /** {@code ceiling} is the persisted end of the last reserved block (0 on a new store). */
  MailboxSequencer(long ceiling, LongConsumer persistCeiling) {
    this.persistCeiling = persistCeiling;
    this.next = Math.max(1, ceiling);
    this.ceiling = ceiling;
  }

  /** Takes the next position for a write to {@code mailbox}; call {@link #finish} after it. */
  Begun begin(MailboxId mailbox) {
    Begun[] begun = new Begun[1];
    lanes.compute(mailbox, (k, lane) -> {
      Lane l = lane != null ? lane : new Lane(highWater());
      long seq = allocate();
      begun[0] = new Begun(seq, l.last);
      l.last = seq;
      l.inProgress.add(seq);
      return l;
    });
    return begun[0];
  }

  /**
   * Marks a write as finished, stored ({@code envelope}) or failed (null), and then tells the
   * mailbox's watchers.
   */
  void finish(MailboxId mailbox, Begun begun, QueuedEnvelope envelope) {
    Watcher[][] watchers = new Watcher[1][];
    lanes.computeIfPresent(mailbox, (k, lane) -> {
      lane.inProgress.remove(begun.seq());
      watchers[0] = lane.watchers.toArray(new Watcher[0]);
      return lane.idle() ? null : lane;
    });
    if (watchers[0] != null) {
      for (Watcher w : watchers[0]) {
        w.finished(begun.seq(), begun.previous(), envelope);
      }
    }
  }

  /** Registers a watcher of {@code mailbox}'s finished writes until the returned watch closes. */
  Watch watch(MailboxId mailbox, Watcher watcher) {
    long[] from = new long[1];
    lanes.compute(mailbox, (k, lane) -> {
      Lane l = lane != null ? lane : new Lane(highWater());
      l.watchers.add(watcher);
      from[0] = l.last;
      return l;
    });
    return new Watch() {
      private boolean closed;

      @Override
      public long from() {
        return from[0];
      }

      @Override
      public void close() {
        if (closed) {
          return;
        }
        closed = true;
        lanes.computeIfPresent(mailbox, (k, lane) -> {
          lane.watchers.remove(watcher);
          return lane.idle() ? null : lane;
        });
      }
    };
  }

  /**
   * The highest position of {@code mailbox} below which no write to it is in progress: every
   * position of the mailbox up to here that will ever hold an envelope holds it now.
   */
  long visibleUpTo(MailboxId mailbox) {
    // Read before looking at the lane: a write to this mailbox that began earlier has a lower
    // position and is either still in the lane or finished; one that begins later is above.
    long high = highWater();
    long[] visible = {high};
    lanes.computeIfPresent(mailbox, (k, lane) -> {
      if (!lane.inProgress.isEmpty()) {
        visible[0] = Math.min(high, lane.inProgress.first() - 1);
      }
      return lane;
    });
    return visible[0];
  }

  /** Mailboxes with a lane now (writes in progress or watchers): for tests of clean-up. */
  int lanes() {
    return lanes.size();
  }

  private synchronized long highWater() {
    return next - 1;
  }

  private synchronized long allocate() {
    if (next >= ceiling) {
      long newCeiling = next + BLOCK;
      persistCeiling.accept(newCeiling);
      ceiling = newCeiling;
    }
    return next++;
  }
}
