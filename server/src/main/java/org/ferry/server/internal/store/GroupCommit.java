package org.ferry.server.internal.store;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.rocksdb.RocksDBException;
import org.rocksdb.WriteBatch;
import org.ferry.ops.log.OneLineLogs;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Group commit: one writer thread takes every queued change, puts them in one write batch and
 * writes it once, synced if any change needs it, then tells each change how it went.
 *
 * <p>Callers never block on a write (a gRPC handler hands its change over and returns), and
 * there is one writer: no threads parked in RocksDB's write group, and changes that need no
 * fsync of their own (deletes after acks) ride along with the next synced batch for free. While
 * one batch is being synced, the next one gathers, so the batch grows with the load: a busy
 * server pays one fsync for many sends.
 */
final class GroupCommit implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(GroupCommit.class);
  /** Changes in one write batch, at most. */
  static final int MAX_BATCH = 1024;

  /** One change to write. Its methods run on the writer thread, in order. */
  interface Change {
    /** Adds the change's operations; {@code batchState} is shared by the changes of one batch. */
    void addTo(WriteBatch batch, BatchState batchState) throws RocksDBException;

    /** Whether the batch must be synced before {@link #written} is called. */
    boolean needsSync();

    /** The batch is durable as asked ({@code failure} null) or failed. */
    void written(Throwable failure);
  }

  /** What the changes of one batch share: queue keys already deleted by an earlier change in it. */
  static final class BatchState {
    final Set<ByteBuffer> deleted = new HashSet<>();
  }

  /** The write itself: RocksDB's, with or without sync. */
  interface Writer {
    void write(WriteBatch batch, boolean sync) throws RocksDBException;
  }

  /** Told of each batch written: how many changes, whether synced, how long the write took. */
  interface Observer {
    Observer NONE = (changes, synced, nanos) -> {};

    void committed(int changes, boolean synced, long nanos);
  }

  private final Writer writer;
  private volatile Observer observer = Observer.NONE;
  private final BlockingQueue<Change> queue = new LinkedBlockingQueue<>();
  private final Thread thread;
  private volatile boolean closed;

  GroupCommit(Writer writer) {
    this.writer = writer;
    this.thread = new Thread(this::run, "ferry-group-commit");
    thread.setDaemon(true);
    thread.start();
  }

  void observe(Observer observer) {
    this.observer = observer;
  }

  /** Queues a change; {@link Change#written} is called on the writer thread (or here if closed). */
  void submit(Change change) {
    if (closed) {
      change.written(new StoreException("store is closed", null));
      return;
    }
    queue.add(change);
  }

  private void run() {
    List<Change> batch = new ArrayList<>();
    while (!closed || !queue.isEmpty()) {
      Change first;
      try {
        first = queue.poll(100, TimeUnit.MILLISECONDS);
      } catch (InterruptedException e) {
        // Nothing interrupts this thread; close() sets closed and waits for the queue to empty.
        Thread.currentThread().interrupt();
        return;
      }
      if (first != null) {
        batch.add(first);
        queue.drainTo(batch, MAX_BATCH - 1);
        commit(batch);
        batch.clear();
      }
    }
  }

  private void commit(List<Change> changes) {
    Throwable failure = null;
    try (WriteBatch batch = new WriteBatch()) {
      BatchState state = new BatchState();
      boolean sync = false;
      for (Change c : changes) {
        c.addTo(batch, state);
        sync |= c.needsSync();
      }
      long start = System.nanoTime();
      writer.write(batch, sync);
      observer.committed(changes.size(), sync, System.nanoTime() - start);
    } catch (RocksDBException | RuntimeException e) {
      failure = e instanceof RocksDBException ? new StoreException("cannot write", e) : e;
      if (StoreException.isDiskFull(e)) {
        // Expected while the disk is full (DiskSpace says so once): no stack trace per batch.
        log.warn("group commit of {} changes failed: disk full", changes.size());
      } else {
        log.error("group commit of {} changes failed: {}", changes.size(), OneLineLogs.describe(e));
      }
    }
    for (Change c : changes) {
      try {
        c.written(failure);
      } catch (RuntimeException | Error e) {
        log.error("completing a write failed: {}", OneLineLogs.describe(e));
      }
    }
  }

  /** Writes what is queued, then stops the writer thread. */
  @Override
  public void close() {
    closed = true;
    try {
      thread.join(TimeUnit.SECONDS.toMillis(30));
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    List<Change> left = new ArrayList<>();
    queue.drainTo(left);
    left.forEach(c -> c.written(new StoreException("store is closed", null)));
  }
}
