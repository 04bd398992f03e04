package org.ferry.server.internal.store;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

class SequenceAllocatorTest {
  @Test
  void positionsKeepGrowingAfterRestartWithoutScanning() {
    AtomicLong persisted = new AtomicLong();
    SequenceAllocator first = new SequenceAllocator(0, persisted::set);
    long last = 0;
    for (int i = 0; i < 10; i++) {
      last = first.begin();
      first.complete(last);
    }
    // A restart knows only the persisted ceiling, never the positions used.
    SequenceAllocator second = new SequenceAllocator(persisted.get(), persisted::set);
    long next = second.begin();
    assertTrue(next > last, "after restart " + next + " must exceed " + last);
  }

  @Test
  void ceilingIsPersistedBeforeAPositionOfANewBlockIsHandedOut() {
    List<Long> ceilings = new ArrayList<>();
    SequenceAllocator alloc = new SequenceAllocator(0, ceilings::add);
    long seq = 0;
    for (long i = 0; i < SequenceAllocator.BLOCK + 2; i++) {
      seq = alloc.begin();
      alloc.complete(seq);
      long ceiling = ceilings.get(ceilings.size() - 1);
      assertTrue(seq < ceiling, "position " + seq + " handed out at or above ceiling " + ceiling);
    }
    assertEquals(2, ceilings.size());
  }

  @Test
  void readersSeeNothingAtOrAboveAWriteStillInProgress() {
    SequenceAllocator alloc = new SequenceAllocator(0, c -> { });
    long slow = alloc.begin();
    long fast = alloc.begin();
    alloc.complete(fast);
    assertEquals(slow - 1, alloc.visibleUpTo(), "the finished later write must stay hidden");
    alloc.complete(slow);
    assertEquals(fast, alloc.visibleUpTo());
  }
}
