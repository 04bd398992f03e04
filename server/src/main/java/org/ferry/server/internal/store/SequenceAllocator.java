package org.ferry.server.internal.store;

import java.util.concurrent.ConcurrentSkipListSet;
import java.util.function.LongConsumer;

/**
 * Hands out queue positions that only grow, across restarts, without scanning the queue.
 *
 * <p>Positions are reserved in blocks: before the first position of a block is used, the
 * block's end is persisted (synced), so after a crash the next start resumes past anything
 * that could have been written.
 *
 * <p>It also tracks positions whose writes are still in progress, so that readers only look
 * up to {@link #visibleUpTo()}: a position below that will never appear later. Without that,
 * a reader could move past a slower concurrent write and miss it.
 */
final class SequenceAllocator {
  static final long BLOCK = 1L << 16;

  private final LongConsumer persistCeiling;
  private final ConcurrentSkipListSet<Long> inProgress = new ConcurrentSkipListSet<>();
  private long next;
  private long ceiling;

  /** {@code ceiling} is the persisted end of the last reserved block (0 on a new store). */
  SequenceAllocator(long ceiling, LongConsumer persistCeiling) {
    this.persistCeiling = persistCeiling;
    this.next = Math.max(1, ceiling);
    this.ceiling = ceiling;
  }

  /** Takes the next position and marks it in progress until {@link #complete}. */
  synchronized long begin() {
    if (next >= ceiling) {
      long newCeiling = next + BLOCK;
      persistCeiling.accept(newCeiling);
      ceiling = newCeiling;
    }
    long seq = next++;
    inProgress.add(seq);
    return seq;
  }

  /** Marks a position's write as finished, whether it succeeded or not. */
  void complete(long seq) {
    inProgress.remove(seq);
  }

  /** The highest position below which no write is still in progress. */
  synchronized long visibleUpTo() {
    return inProgress.isEmpty() ? next - 1 : inProgress.first() - 1;
  }
}
