package org.ferry.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.List;
import org.ferry.it.load.HostileReceivers;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issue 19 point 2: whatever clients do, a small-heap server keeps its memory bounded and keeps
 * serving an honest pair. The long run with its figures is {@code HostileReceivers.main}
 * (docs/BENCHMARKS.md).
 */
class HostileReceiversTest {
  @TempDir Path work;

  @Test
  void nonReadingStreamsAndIdleConnectionsNeitherExhaustMemoryNorStopAnHonestPair() throws Exception {
    // 320 streams that never read, 8 per mailbox and 8 per connection, on 40 mailboxes holding
    // 2 MiB each: about 640 MiB if each stream queued its whole window, five times the heap.
    HostileReceivers.Plan plan = new HostileReceivers.Plan(40, 2 << 20, 320, 40, 300, 60, 100);
    HostileReceivers.Result r =
        HostileReceivers.run(work, List.of("-Xmx128m", "-XX:+ExitOnOutOfMemoryError"), plan);

    assertFalse(r.outOfMemory(), "OutOfMemoryError in the server's log");
    assertTrue(r.serverAlive(), "server still running");
    assertEquals(0, r.honestLost(), "honest envelopes that did not arrive within 30 s");
    assertEquals(320, r.subscribed(), "hostile streams within every cap are served");
  }
}
