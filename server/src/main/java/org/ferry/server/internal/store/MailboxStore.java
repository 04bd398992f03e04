package org.ferry.server.internal.store;

import static java.nio.charset.StandardCharsets.US_ASCII;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Predicate;
import org.ferry.proto.PaddingBuckets;
import org.ferry.server.internal.mailbox.InvitationBlob;
import org.ferry.server.internal.mailbox.MailboxId;
import org.ferry.server.internal.mailbox.MailboxRecord;
import org.ferry.server.internal.mailbox.QueuedEnvelope;
import org.rocksdb.Checkpoint;
import org.rocksdb.ColumnFamilyDescriptor;
import org.rocksdb.ColumnFamilyHandle;
import org.rocksdb.ColumnFamilyOptions;
import org.rocksdb.DBOptions;
import org.rocksdb.Env;
import org.rocksdb.FlushOptions;
import org.rocksdb.ReadOptions;
import org.rocksdb.RocksDB;
import org.rocksdb.RocksDBException;
import org.rocksdb.RocksIterator;
import org.rocksdb.Slice;
import org.rocksdb.SstFileManager;
import org.rocksdb.WriteBatch;
import org.rocksdb.WriteOptions;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The server's durable state in RocksDB.
 *
 * <p>Column families: {@code mailboxes} (id -> owner key, capability hash, created),
 * {@code queue} (id | seq, big-endian -> envelope, so iteration order is delivery order),
 * {@code blobs} (id -> encrypted invitation bundle), {@code meta} (sequence ceiling),
 * {@code usage} (per-mailbox envelope count and bytes, and the total bytes queued: counters
 * kept by RocksDB's uint64 add merge operator, so concurrent writers never overwrite each
 * other's counts) and {@code expiry} (kind | expires-at | id | seq, big-endian: a time-ordered
 * index, so the sweeper reads only what has expired).
 *
 * <p>An envelope, its index entry and its counters change in one atomic write batch, so they
 * agree after any crash, and start-up reads one counter instead of scanning the queue.
 *
 * <p>Every change to the queue (appends, deletes after acks and expiry) goes through one writer
 * thread, {@link GroupCommit}: it puts all queued changes in one write batch and writes it once,
 * synced when any change in it is an append. Callers are told on completion and never block a
 * thread on the disk. Writes that a client is told about (envelopes, and also mailbox creation,
 * invitations, taking an invitation, which are synced directly) are synced before they are
 * acknowledged. Deleting an acknowledged or expired envelope is not synced on its own: it rides
 * along with the next synced batch; if a power loss drops it, the envelope is delivered again
 * (or swept again) and the client drops the duplicate. A killed process loses none of them.
 */
public final class MailboxStore implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(MailboxStore.class);

  private static final byte FORMAT = 1;
  private static final byte[] SEQ_CEILING = "seq-ceiling".getBytes(US_ASCII);
  private static final byte[] TOTAL_BYTES = "total-bytes".getBytes(US_ASCII);
  private static final byte COUNT = 'c';
  private static final byte BYTES = 'b';
  private static final byte QUEUE_KIND = 'q';
  private static final byte INVITATION_KIND = 'i';
  private static final byte OUTBOUND_KIND = 'o';
  private static final byte SEEN_KIND = 's';
  private static final byte[] OUTBOUND_BYTES = "outbound-bytes".getBytes(US_ASCII);
  /** Queue value: format, expires-at millis, envelope id, body. */
  private static final int QUEUE_VALUE_OVERHEAD = 1 + 8 + QueuedEnvelope.ENVELOPE_ID_LENGTH;
  private static final byte[] EMPTY = new byte[0];
  private static final int SWEEP_BATCH = 1024;

  static {
    RocksDB.loadLibrary();
  }

  private final DBOptions dbOptions;
  private final ColumnFamilyOptions cfOptions;
  private final ColumnFamilyOptions counterOptions;
  private final RocksDB db;
  private final List<ColumnFamilyHandle> handles;
  private final ColumnFamilyHandle mailboxes;
  private final ColumnFamilyHandle queue;
  private final ColumnFamilyHandle blobs;
  private final ColumnFamilyHandle meta;
  private final ColumnFamilyHandle usage;
  private final ColumnFamilyHandle expiry;
  /** Federation: items in custody for other servers, destination fingerprint | seq. */
  private final ColumnFamilyHandle outbound;
  /** Federation: item ids a peer delivered, peer fingerprint | item id -> remembered until. */
  private final ColumnFamilyHandle seen;
  /** Column families by name, for {@link #longProperty}. */
  private final Map<String, ColumnFamilyHandle> families;
  /** Guards reads of RocksDB properties against {@link #close} (a closed handle crashes the JVM). */
  private final Object propertyLock = new Object();
  private boolean closed;
  private final WriteOptions syncWrite;
  private final WriteOptions asyncWrite;
  private final MailboxSequencer sequences;
  /** Guards the order of outbound positions and their writes (see {@link #enqueueOutbound}). */
  private final Object outboundOrder = new Object();
  /** Every change to the queue (appends, deletes) goes through its one writer. */
  private final GroupCommit commits;
  /** Mirrors the persisted total so that budget checks need no read. */
  private final AtomicLong queuedBytes;
  /** Envelopes in all mailboxes: summed from the per-mailbox counters at open, then kept. */
  private final AtomicLong queuedEnvelopes;
  /** Mirrors the persisted total of outbound body bytes (part of the storage budget). */
  private final AtomicLong outboundBytes;
  /** The next outbound position (one sequence for all destinations). */
  private final AtomicLong outboundSeq;
  private final DiskSpace space;
  private final SstFileManager sstFiles;
  /** Flushes and compacts to give space back while the disk is full (see {@link #reclaim}). */
  private final ExecutorService reclaimer = Executors.newSingleThreadExecutor(r -> {
    Thread t = new Thread(r, "ferry-store-reclaim");
    t.setDaemon(true);
    return t;
  });
  private final AtomicBoolean reclaimQueued = new AtomicBoolean();

  private MailboxStore(
      DBOptions dbOptions,
      ColumnFamilyOptions cfOptions,
      ColumnFamilyOptions counterOptions,
      RocksDB db,
      List<ColumnFamilyHandle> h,
      DiskSpace space,
      SstFileManager sstFiles)
      throws RocksDBException {
    this.space = space;
    this.sstFiles = sstFiles;
    this.dbOptions = dbOptions;
    this.cfOptions = cfOptions;
    this.counterOptions = counterOptions;
    this.db = db;
    this.handles = h;
    this.mailboxes = h.get(1);
    this.queue = h.get(2);
    this.blobs = h.get(3);
    this.meta = h.get(4);
    this.usage = h.get(5);
    this.expiry = h.get(6);
    this.outbound = h.get(7);
    this.seen = h.get(8);
    this.families = new java.util.LinkedHashMap<>();
    String[] names = {"mailboxes", "queue", "blobs", "meta", "usage", "expiry", "outbound", "seen"};
    for (int i = 0; i < names.length; i++) {
      families.put(names[i], h.get(i + 1));
    }
    this.syncWrite = new WriteOptions().setSync(true);
    this.asyncWrite = new WriteOptions();
    byte[] ceiling = db.get(meta, SEQ_CEILING);
    this.sequences =
        new MailboxSequencer(ceiling == null ? 0 : ByteBuffer.wrap(ceiling).getLong(), this::persistCeiling);
    this.queuedBytes = new AtomicLong(counter(TOTAL_BYTES));
    this.queuedEnvelopes = new AtomicLong(sumOfCounts());
    this.outboundBytes = new AtomicLong(counter(OUTBOUND_BYTES));
    this.outboundSeq = new AtomicLong(maxOutboundSeq() + 1);
    this.commits = new GroupCommit((batch, sync) -> {
      try {
        db.write(sync ? syncWrite : asyncWrite, batch);
      } catch (RocksDBException e) {
        if (StoreException.isDiskFull(e)) {
          space.writeFailed();
        }
        throw e;
      }
    });
  }

  /**
   * Opens (or creates) the store in {@code directory}, keeping {@link
   * DiskSpace#DEFAULT_RESERVE_BYTES} free on its disk.
   */
  public static MailboxStore open(Path directory) throws IOException {
    return open(directory, DiskSpace.DEFAULT_RESERVE_BYTES, DiskSpace.DEFAULT_BALLAST_BYTES);
  }

  /**
   * Opens (or creates) the store in {@code directory}. New envelopes, mailboxes and invitations
   * are refused (a {@link StoreException} whose {@link StoreException#diskFull} is true) while
   * less than {@code reserveBytes} of its disk is usable; a reserve file of {@code ballastBytes}
   * beside it is given back when the disk fills up so that deletes still find room (see {@link
   * DiskSpace}).
   */
  public static MailboxStore open(Path directory, long reserveBytes, long ballastBytes) throws IOException {
    Files.createDirectories(directory);
    DiskSpace space = new DiskSpace(directory, reserveBytes, ballastBytes);
    // RocksDB recovers by itself from running out of space (once there is room again) only when it
    // has a file manager.
    SstFileManager sstFiles;
    try {
      sstFiles = new SstFileManager(Env.getDefault());
    } catch (RocksDBException e) {
      throw new IOException("cannot set up the store's file manager: " + e.getMessage(), e);
    }
    // No fallocate: preallocated blocks (up to 1.1 times a table file) would take the little
    // room a full disk has left from the deletes and flushes that give space back.
    DBOptions dbOptions = new DBOptions().setCreateIfMissing(true).setCreateMissingColumnFamilies(true)
        .setSstFileManager(sstFiles)
        .setAllowFAllocate(false);
    ColumnFamilyOptions cfOptions = new ColumnFamilyOptions();
    // Counters collapse in the memtable every few merges, so reading one stays cheap.
    ColumnFamilyOptions counterOptions =
        new ColumnFamilyOptions().setMergeOperatorName("uint64add").setMaxSuccessiveMerges(16);
    List<ColumnFamilyDescriptor> descriptors = new ArrayList<>();
    descriptors.add(new ColumnFamilyDescriptor(RocksDB.DEFAULT_COLUMN_FAMILY, cfOptions));
    for (String name : List.of("mailboxes", "queue", "blobs", "meta")) {
      descriptors.add(new ColumnFamilyDescriptor(name.getBytes(US_ASCII), cfOptions));
    }
    descriptors.add(new ColumnFamilyDescriptor("usage".getBytes(US_ASCII), counterOptions));
    descriptors.add(new ColumnFamilyDescriptor("expiry".getBytes(US_ASCII), cfOptions));
    descriptors.add(new ColumnFamilyDescriptor("outbound".getBytes(US_ASCII), cfOptions));
    descriptors.add(new ColumnFamilyDescriptor("seen".getBytes(US_ASCII), cfOptions));
    List<ColumnFamilyHandle> handles = new ArrayList<>();
    try {
      RocksDB db = RocksDB.open(dbOptions, directory.toString(), descriptors, handles);
      return new MailboxStore(dbOptions, cfOptions, counterOptions, db, handles, space, sstFiles);
    } catch (RocksDBException e) {
      handles.forEach(ColumnFamilyHandle::close);
      counterOptions.close();
      cfOptions.close();
      dbOptions.close();
      sstFiles.close();
      throw new IOException("cannot open store in " + directory + ": " + e.getMessage(), e);
    }
  }

  private void persistCeiling(long ceiling) {
    try {
      db.put(meta, syncWrite, SEQ_CEILING, ByteBuffer.allocate(8).putLong(ceiling).array());
    } catch (RocksDBException e) {
      throw new StoreException("cannot persist sequence ceiling", e);
    }
  }

  /**
   * Writes of new data fail with a {@link StoreException} whose {@link StoreException#diskFull}
   * is true when the disk has no room for them ({@link DiskSpace}).
   */
  private void requireRoom() {
    if (!space.hasRoom()) {
      throw StoreException.diskFull("the server's disk is full");
    }
  }

  public void createMailbox(MailboxRecord record) {
    requireRoom();
    ByteBuffer v = ByteBuffer.allocate(1 + 32 + 32 + 8);
    v.put(FORMAT).put(record.ownerKey()).put(record.sendCapabilityHash());
    v.putLong(record.createdAt().toEpochMilli());
    put(mailboxes, record.id().bytes(), v.array());
  }

  public Optional<MailboxRecord> mailbox(MailboxId id) {
    byte[] v = get(mailboxes, id.bytes());
    if (v == null) {
      return Optional.empty();
    }
    ByteBuffer b = ByteBuffer.wrap(v);
    checkFormat(b.get());
    byte[] owner = new byte[32];
    byte[] capHash = new byte[32];
    b.get(owner).get(capHash);
    return Optional.of(new MailboxRecord(id, owner, capHash, Instant.ofEpochMilli(b.getLong())));
  }

  /**
   * Appends durably (synced) and returns the envelope's position in its mailbox; blocks until
   * the write is synced. See {@link #appendAsync}.
   */
  public long append(MailboxId mailbox, byte[] envelopeId, byte[] body, Instant expiresAt) {
    return await(appendAsync(mailbox, envelopeId, body, expiresAt));
  }

  /**
   * Appends an envelope through the group commit; the future completes with its position once
   * the write is synced, or fails with {@link StoreException}. The body must be one of the
   * padding-bucket sizes: the store holds nothing else. Once the write finished, stored or
   * failed, the mailbox's watchers ({@link #watch}) are told, on the writer's thread, before the
   * future completes.
   *
   * @throws IllegalArgumentException at once, for a body or id of the wrong size
   */
  public CompletableFuture<Long> appendAsync(
      MailboxId mailbox, byte[] envelopeId, byte[] body, Instant expiresAt) {
    return appendAsync(mailbox, envelopeId, body, expiresAt, null);
  }

  /**
   * As {@link #appendAsync(MailboxId, byte[], byte[], Instant)}, and in the same write batch
   * remembers that a peer delivered this item ({@code mark}, if not null), so that a retry is
   * recognised ({@link #seenUntil}) and the item is never stored twice.
   */
  public CompletableFuture<Long> appendAsync(
      MailboxId mailbox, byte[] envelopeId, byte[] body, Instant expiresAt, SeenMark mark) {
    if (!PaddingBuckets.isBucketSize(body.length)) {
      throw new IllegalArgumentException("body is not a bucket size: " + body.length);
    }
    if (envelopeId.length != QueuedEnvelope.ENVELOPE_ID_LENGTH) {
      throw new IllegalArgumentException("envelope id must be 16 bytes: " + envelopeId.length);
    }
    CompletableFuture<Long> done = new CompletableFuture<>();
    if (!space.hasRoom()) {
      done.completeExceptionally(StoreException.diskFull("the server's disk is full"));
      return done;
    }
    MailboxSequencer.Begun begun = sequences.begin(mailbox);
    long seq = begun.seq();
    commits.submit(new GroupCommit.Change() {
      @Override
      public void addTo(WriteBatch batch, GroupCommit.BatchState state) throws RocksDBException {
        addAppend(batch, mailbox, seq, envelopeId, body, expiresAt);
        if (mark != null) {
          batch.put(seen, mark.key(), ByteBuffer.allocate(8).putLong(mark.until().toEpochMilli()).array());
          batch.put(expiry, mark.expiryKey(SEEN_KIND), EMPTY);
        }
      }

      @Override
      public boolean needsSync() {
        return true;
      }

      @Override
      public void written(Throwable failure) {
        QueuedEnvelope stored = null;
        if (failure == null) {
          queuedBytes.addAndGet(body.length);
          queuedEnvelopes.incrementAndGet();
          stored = new QueuedEnvelope(mailbox, seq, envelopeId, body, expiresAt);
        }
        try {
          sequences.finish(mailbox, begun, stored);
        } finally {
          if (failure == null) {
            done.complete(seq);
          } else {
            done.completeExceptionally(failure);
          }
        }
      }
    });
    return done;
  }

  private void addAppend(WriteBatch batch, MailboxId mailbox, long seq, byte[] envelopeId, byte[] body,
      Instant expiresAt) throws RocksDBException {
    ByteBuffer v = ByteBuffer.allocate(QUEUE_VALUE_OVERHEAD + body.length);
    v.put(FORMAT).putLong(expiresAt.toEpochMilli()).put(envelopeId).put(body);
    batch.put(queue, queueKey(mailbox, seq), v.array());
    batch.put(expiry, expiryKey(QUEUE_KIND, expiresAt.toEpochMilli(), mailbox, seq), EMPTY);
    batch.merge(usage, usageKey(mailbox, COUNT), delta(1));
    batch.merge(usage, usageKey(mailbox, BYTES), delta(body.length));
    batch.merge(usage, TOTAL_BYTES, delta(body.length));
  }

  /**
   * While the disk is full, deleted envelopes free nothing by themselves: they stay in the
   * write-ahead log and memtable, or in table files, until a flush or compaction. This runs both
   * (one at a time, on its own thread) so that owners who drain give the space back.
   */
  private void reclaim() {
    // A flush or compaction writes out what is still live, at most everything queued: only once
    // that fits twice over in what is left. Trying earlier would fail for lack of room, and a
    // failed flush stops every write until RocksDB has recovered.
    if (2 * queuedBytes.get() + (1 << 20) > space.usableBytes()
        || !reclaimQueued.compareAndSet(false, true)) {
      return;
    }
    reclaimer.execute(() -> {
      reclaimQueued.set(false);
      try (FlushOptions flush = new FlushOptions().setWaitForFlush(true)) {
        db.flush(flush, handles);
        db.compactRange(queue);
        db.compactRange(expiry);
      } catch (RocksDBException e) {
        log.warn("cannot reclaim disk space from delivered envelopes yet ({} bytes usable): {}",
            space.usableBytes(), e.getMessage());
      }
    });
  }

  private static <T> T await(CompletableFuture<T> future) {
    try {
      return future.join();
    } catch (CompletionException e) {
      if (e.getCause() instanceof RuntimeException r) {
        throw r;
      }
      throw new StoreException("write failed", e.getCause());
    }
  }

  /**
   * Watches {@code mailbox}'s appends: the watcher hears of each one that finishes after this
   * call, with the mailbox's position before it, until the watch is closed. A reader that starts
   * from the store and then follows the watcher misses nothing: every append at a position above
   * {@link MailboxSequencer.Watch#from()} is told, the rest is in the store.
   */
  public MailboxSequencer.Watch watch(MailboxId mailbox, MailboxSequencer.Watcher watcher) {
    return sequences.watch(mailbox, watcher);
  }

  /**
   * The highest position of {@code mailbox} that a read can see now: no write to the mailbox
   * below it is still in progress, so nothing will appear there later.
   */
  public long visibleUpTo(MailboxId mailbox) {
    return sequences.visibleUpTo(mailbox);
  }

  /** How many envelopes, and how many body bytes, wait in {@code mailbox}. */
  public MailboxUsage usage(MailboxId mailbox) {
    return new MailboxUsage(
        counter(usageKey(mailbox, COUNT)), counter(usageKey(mailbox, BYTES)));
  }

  /** Body bytes queued across all mailboxes. */
  public long queuedBytes() {
    return queuedBytes.get();
  }

  /** Envelopes waiting in all mailboxes together. */
  public long queuedEnvelopes() {
    return queuedEnvelopes.get();
  }

  /** The store's disk, as new writes see it (for status reports). */
  public DiskSpace diskSpace() {
    return space;
  }

  /** Tells {@code observer} of every group-commit batch written from now on (for metrics). */
  public void observeCommits(CommitObserver observer) {
    commits.observe(observer::committed);
  }

  /** See {@link #observeCommits}. */
  @FunctionalInterface
  public interface CommitObserver {
    /** A batch of {@code changes} was written, synced or not, in {@code nanos}. */
    void committed(int changes, boolean synced, long nanos);
  }

  /** The column families, by name, for {@link #longProperty}. */
  public List<String> columnFamilies() {
    return List.copyOf(families.keySet());
  }

  /**
   * A RocksDB integer property ({@code rocksdb.estimate-num-keys} and the like) of a column
   * family; -1 if RocksDB cannot give it or the store is closed.
   */
  public long longProperty(String columnFamily, String property) {
    ColumnFamilyHandle handle = families.get(columnFamily);
    synchronized (propertyLock) {
      if (handle == null || closed) {
        return -1;
      }
      try {
        return db.getLongProperty(handle, property);
      } catch (RocksDBException e) {
        return -1;
      }
    }
  }

  /**
   * Makes a RocksDB checkpoint of the store in {@code target} (which must not exist; its parent
   * must): a consistent copy as of this call, with every write acknowledged before it, that
   * RocksDB opens as a store of its own. Table files are hard links when {@code target} is on
   * the store's file system (nearly free), copies otherwise; the rest (manifest, options, the
   * logs it needs) are copied. Writes go on meanwhile.
   *
   * @throws IOException if RocksDB cannot make it, or the store is closed
   */
  public void checkpoint(Path target) throws IOException {
    synchronized (propertyLock) {
      if (closed) {
        throw new IOException("the store is closed");
      }
      try (Checkpoint checkpoint = Checkpoint.create(db)) {
        checkpoint.createCheckpoint(target.toString());
      } catch (RocksDBException e) {
        throw new IOException("cannot make a checkpoint of the store: " + e.getMessage(), e);
      }
    }
  }

  /** The per-mailbox envelope counters added up: one short scan of the usage column family. */
  private long sumOfCounts() {
    long total = 0;
    try (RocksIterator it = db.newIterator(usage)) {
      for (it.seekToFirst(); it.isValid(); it.next()) {
        byte[] key = it.key();
        if (key.length == 33 && key[32] == COUNT) {
          total += ByteBuffer.wrap(it.value()).order(ByteOrder.LITTLE_ENDIAN).getLong();
        }
      }
    }
    return total;
  }

  /**
   * Reads up to {@code limit} envelopes of {@code mailbox} with positions from {@code fromSeq}
   * on, in order, stopping before any position whose write may still be in progress. The slice
   * says how far the read covered: the last envelope's position when the limit was reached,
   * otherwise the mailbox's visible end.
   */
  public QueueSlice read(MailboxId mailbox, long fromSeq, int limit) {
    return read(mailbox, fromSeq, limit, Long.MAX_VALUE);
  }

  /**
   * Like {@link #read(MailboxId, long, int)}, and also stops once the envelopes read hold
   * {@code maxBytes} of body or more (it always returns at least one envelope if there is one):
   * a reader that can send only so much at a time never holds a whole window in memory.
   */
  public QueueSlice read(MailboxId mailbox, long fromSeq, int limit, long maxBytes) {
    long upTo = sequences.visibleUpTo(mailbox);
    List<QueuedEnvelope> out = new ArrayList<>();
    if (fromSeq > upTo || limit <= 0) {
      return new QueueSlice(out, fromSeq - 1);
    }
    byte[] prefix = mailbox.bytes();
    try (Slice upper = new Slice(queueKey(mailbox, upTo + 1));
        ReadOptions ro = new ReadOptions().setIterateUpperBound(upper);
        RocksIterator it = db.newIterator(queue, ro)) {
      long bytes = 0;
      for (it.seek(queueKey(mailbox, fromSeq));
          it.isValid() && out.size() < limit && bytes < maxBytes; it.next()) {
        byte[] key = it.key();
        if (!Arrays.equals(key, 0, 32, prefix, 0, 32)) {
          break;
        }
        ByteBuffer v = ByteBuffer.wrap(it.value());
        checkFormat(v.get());
        Instant expires = Instant.ofEpochMilli(v.getLong());
        byte[] envelopeId = new byte[QueuedEnvelope.ENVELOPE_ID_LENGTH];
        v.get(envelopeId);
        byte[] body = new byte[v.remaining()];
        v.get(body);
        long seq = ByteBuffer.wrap(key, 32, 8).getLong();
        out.add(new QueuedEnvelope(mailbox, seq, envelopeId, body, expires));
        bytes += body.length;
      }
      if (bytes >= maxBytes && out.size() < limit) {
        // Stopped by size: the slice covers what it holds, not the visible end.
        return new QueueSlice(out, out.get(out.size() - 1).seq());
      }
      it.status();
    } catch (RocksDBException e) {
      throw new StoreException("cannot read queue", e);
    }
    long scannedTo = out.size() == limit ? out.get(out.size() - 1).seq() : upTo;
    return new QueueSlice(out, scannedTo);
  }

  /**
   * Removes a delivered (or expired) envelope with its index entry and counts; false if it was
   * gone already. Not synced: see the class comment.
   */
  public boolean delete(MailboxId mailbox, long seq) {
    return deleteAll(mailbox, List.of(seq)) == 1;
  }

  /**
   * Removes delivered (or expired) envelopes of one mailbox, with their index entries and counts,
   * in one write; positions already gone are skipped. Blocks until written (not synced: see the
   * class comment) and returns how many were removed.
   */
  public int deleteAll(MailboxId mailbox, List<Long> seqs) {
    return await(deleteAllAsync(mailbox, seqs));
  }

  /**
   * Removes envelopes through the group commit, without a sync of their own (they ride along
   * with the next synced batch, if any); the future completes with how many were removed once
   * the write is done.
   */
  public CompletableFuture<Integer> deleteAllAsync(MailboxId mailbox, List<Long> seqs) {
    CompletableFuture<Integer> done = new CompletableFuture<>();
    if (seqs.isEmpty()) {
      done.complete(0);
      return done;
    }
    // Deletes are never refused; reading the space gives the reserve file back if it runs low.
    space.hasRoom();
    List<Long> positions = List.copyOf(new LinkedHashSet<>(seqs));
    commits.submit(new GroupCommit.Change() {
      private int removed;
      private long bytes;

      @Override
      public void addTo(WriteBatch batch, GroupCommit.BatchState state) throws RocksDBException {
        // Only this writer thread changes the queue, so what it reads here is what the batch
        // changes; positions an earlier change of this batch deletes are skipped.
        List<byte[]> keys = new ArrayList<>(positions.size());
        for (long seq : positions) {
          keys.add(queueKey(mailbox, seq));
        }
        List<byte[]> values = db.multiGetAsList(Collections.nCopies(keys.size(), queue), keys);
        for (int i = 0; i < keys.size(); i++) {
          byte[] value = values.get(i);
          if (value == null || !state.deleted.add(ByteBuffer.wrap(keys.get(i)))) {
            continue;
          }
          ByteBuffer v = ByteBuffer.wrap(value);
          checkFormat(v.get());
          long expiresAt = v.getLong();
          batch.delete(queue, keys.get(i));
          batch.delete(expiry, expiryKey(QUEUE_KIND, expiresAt, mailbox, positions.get(i)));
          bytes += value.length - QUEUE_VALUE_OVERHEAD;
          removed++;
        }
        if (removed > 0) {
          batch.merge(usage, usageKey(mailbox, COUNT), delta(-removed));
          batch.merge(usage, usageKey(mailbox, BYTES), delta(-bytes));
          batch.merge(usage, TOTAL_BYTES, delta(-bytes));
        }
      }

      @Override
      public boolean needsSync() {
        return false;
      }

      @Override
      public void written(Throwable failure) {
        if (failure != null) {
          done.completeExceptionally(failure);
          return;
        }
        queuedBytes.addAndGet(-bytes);
        queuedEnvelopes.addAndGet(-removed);
        // The reading taken when the delete was queued: no second statvfs per ack batch.
        if (removed > 0 && !space.hadRoom()) {
          reclaim();
        }
        done.complete(removed);
      }
    });
    return done;
  }

  /**
   * Removes every envelope that expired at or before {@code now}, oldest expiry first, reading
   * only the expired part of the index. Returns how many it removed.
   */
  public int deleteExpiredEnvelopes(Instant now) {
    int removed = 0;
    List<byte[]> keys;
    do {
      keys = expiredKeys(QUEUE_KIND, now);
      // One delete per mailbox, all in the same group commits.
      Map<MailboxId, List<Long>> byMailbox = new LinkedHashMap<>();
      for (byte[] key : keys) {
        byMailbox.computeIfAbsent(mailboxOf(key), k -> new ArrayList<>())
            .add(ByteBuffer.wrap(key, 9 + MailboxId.LENGTH, 8).getLong());
      }
      List<CompletableFuture<Integer>> deletes = new ArrayList<>();
      byMailbox.forEach((mailbox, seqs) -> deletes.add(deleteAllAsync(mailbox, seqs)));
      for (CompletableFuture<Integer> d : deletes) {
        removed += await(d);
      }
      // An ack may have removed an envelope, and its index entry with it, after the index was
      // read; the index entries of the rest are gone with their envelopes. Either way: drop them.
      try (WriteBatch batch = new WriteBatch()) {
        for (byte[] key : keys) {
          batch.delete(expiry, key);
        }
        db.write(asyncWrite, batch);
      } catch (RocksDBException e) {
        throw new StoreException("cannot delete from expiry index", e);
      }
    } while (keys.size() == SWEEP_BATCH);
    return removed;
  }

  /**
   * Removes every invitation (bundle or "taken" marker) that expired at or before {@code now},
   * and erases the bundle of every invitation whose take grace (see
   * {@link InvitationBlob#TAKE_GRACE}) has ended, keeping its "taken" marker. The caller
   * serializes this with other invitation changes. Returns how many it removed.
   */
  public int deleteExpiredInvitations(Instant now) {
    return sweep(INVITATION_KIND, now, key -> {
      MailboxId mailbox = mailboxOf(key);
      Optional<InvitationBlob> blob = invitation(mailbox);
      // An entry for a time before the invitation's expiry was left by a replaced one.
      boolean expired = blob.isPresent() && blob.get().isExpired(now);
      boolean graceOver = blob.isPresent() && !expired && blob.get().takeIdHash().isPresent()
          && blob.get().graceOver(now);
      if (graceOver) {
        putInvitation(blob.get().takenMarker());
      }
      try (WriteBatch batch = new WriteBatch()) {
        batch.delete(expiry, key);
        if (expired) {
          batch.delete(blobs, mailbox.bytes());
        }
        db.write(asyncWrite, batch);
      } catch (RocksDBException e) {
        throw new StoreException("cannot delete expired invitation", e);
      }
      return expired;
    });
  }

  /** Hands each due index entry of {@code kind} to {@code remove}, a batch at a time; counts the trues. */
  private int sweep(byte kind, Instant now, Predicate<byte[]> remove) {
    int removed = 0;
    List<byte[]> keys;
    do {
      keys = expiredKeys(kind, now);
      for (byte[] key : keys) {
        if (remove.test(key)) {
          removed++;
        }
      }
    } while (keys.size() == SWEEP_BATCH);
    return removed;
  }

  private static MailboxId mailboxOf(byte[] expiryKey) {
    return new MailboxId(Arrays.copyOfRange(expiryKey, 9, 9 + MailboxId.LENGTH));
  }

  private List<byte[]> expiredKeys(byte kind, Instant now) {
    List<byte[]> keys = new ArrayList<>();
    byte[] upper = ByteBuffer.allocate(9).put(kind).putLong(now.toEpochMilli() + 1).array();
    try (Slice bound = new Slice(upper);
        ReadOptions ro = new ReadOptions().setIterateUpperBound(bound);
        RocksIterator it = db.newIterator(expiry, ro)) {
      for (it.seek(new byte[] {kind}); it.isValid() && keys.size() < SWEEP_BATCH; it.next()) {
        keys.add(it.key());
      }
      it.status();
    } catch (RocksDBException e) {
      throw new StoreException("cannot read expiry index", e);
    }
    return keys;
  }

  /**
   * Stores an invitation, synced. Value: format, state (0 untaken, 1 taken, 2 taken by a taker
   * with a take id: then taken-at millis and the take id's hash follow), expires-at millis,
   * fetch token hash, bundle.
   */
  public void putInvitation(InvitationBlob blob) {
    if (!blob.taken()) {
      // Marking one taken is never refused: it makes nothing bigger.
      requireRoom();
    }
    boolean withTaker = blob.takeIdHash().isPresent();
    ByteBuffer v = ByteBuffer.allocate(1 + 1 + 8 + (withTaker ? 8 + 32 : 0) + 32 + blob.blob().length);
    long expiresAt = blob.expiresAt().toEpochMilli();
    v.put(FORMAT).put((byte) (withTaker ? 2 : blob.taken() ? 1 : 0)).putLong(expiresAt);
    if (withTaker) {
      v.putLong(blob.takenAt().orElseThrow().toEpochMilli()).put(blob.takeIdHash().get());
    }
    v.put(blob.fetchTokenHash()).put(blob.blob());
    try (WriteBatch batch = new WriteBatch()) {
      batch.put(blobs, blob.mailbox().bytes(), v.array());
      batch.put(expiry, expiryKey(INVITATION_KIND, expiresAt, blob.mailbox(), 0), EMPTY);
      if (withTaker) {
        // When the take grace ends, the sweeper erases the bundle.
        long graceEnds = blob.takenAt().get().plus(InvitationBlob.TAKE_GRACE).toEpochMilli();
        batch.put(expiry, expiryKey(INVITATION_KIND, Math.min(graceEnds, expiresAt), blob.mailbox(), 0), EMPTY);
      }
      db.write(syncWrite, batch);
    } catch (RocksDBException e) {
      throw new StoreException("cannot write invitation", e);
    }
  }

  public Optional<InvitationBlob> invitation(MailboxId mailbox) {
    byte[] v = get(blobs, mailbox.bytes());
    if (v == null) {
      return Optional.empty();
    }
    ByteBuffer b = ByteBuffer.wrap(v);
    checkFormat(b.get());
    byte state = b.get();
    Instant expires = Instant.ofEpochMilli(b.getLong());
    Optional<Instant> takenAt = Optional.empty();
    Optional<byte[]> takeIdHash = Optional.empty();
    if (state == 2) {
      takenAt = Optional.of(Instant.ofEpochMilli(b.getLong()));
      byte[] hash = new byte[32];
      b.get(hash);
      takeIdHash = Optional.of(hash);
    }
    byte[] tokenHash = new byte[32];
    b.get(tokenHash);
    byte[] blob = new byte[b.remaining()];
    b.get(blob);
    return Optional.of(new InvitationBlob(mailbox, tokenHash, blob, expires, state != 0, takeIdHash, takenAt));
  }

  /**
   * Deletes a mailbox for good: its record and invitation at once (synced), so that nothing
   * more is accepted for it, then every envelope queued in it.
   */
  public void deleteMailbox(MailboxId mailbox) {
    try (WriteBatch batch = new WriteBatch()) {
      batch.delete(mailboxes, mailbox.bytes());
      batch.delete(blobs, mailbox.bytes());
      db.write(syncWrite, batch);
    } catch (RocksDBException e) {
      throw new StoreException("cannot delete mailbox", e);
    }
    List<Long> seqs = new ArrayList<>();
    byte[] prefix = mailbox.bytes();
    try (RocksIterator it = db.newIterator(queue)) {
      for (it.seek(prefix); it.isValid(); it.next()) {
        byte[] k = it.key();
        if (k.length != 40 || !Arrays.equals(k, 0, 32, prefix, 0, 32)) {
          break;
        }
        seqs.add(ByteBuffer.wrap(k, 32, 8).getLong());
        if (seqs.size() == SWEEP_BATCH) {
          deleteAll(mailbox, List.copyOf(seqs));
          seqs.clear();
        }
      }
      it.status();
    } catch (RocksDBException e) {
      throw new StoreException("cannot read queue", e);
    }
    deleteAll(mailbox, seqs);
  }

  public void deleteInvitation(MailboxId mailbox) {
    try {
      db.delete(blobs, syncWrite, mailbox.bytes());
    } catch (RocksDBException e) {
      throw new StoreException("cannot delete invitation", e);
    }
  }

  // ---- Federation: outbound custody and the ids peers delivered ----

  /**
   * Takes custody of an item for the server whose fingerprint is {@code destination} (32 bytes):
   * through the group commit, synced; the future completes with its position once durable.
   */
  public CompletableFuture<Long> enqueueOutbound(byte[] destination, OutboundItem item) {
    CompletableFuture<Long> done = new CompletableFuture<>();
    if (!space.hasRoom()) {
      done.completeExceptionally(StoreException.diskFull("the server's disk is full"));
      return done;
    }
    byte[] value = item.encode();
    int bytes = item.body().length;
    // Positions are taken in the order the writer writes them (one lock around both), so an
    // item is never visible before one with a lower position: a lane that read past a position
    // (Lane#from) never skips an item written later below it.
    synchronized (outboundOrder) {
      long seq = outboundSeq.getAndIncrement();
      submitOutbound(destination, item, seq, value, bytes, done);
    }
    return done;
  }

  private void submitOutbound(byte[] destination, OutboundItem item, long seq, byte[] value, int bytes,
      CompletableFuture<Long> done) {
    commits.submit(new GroupCommit.Change() {
      @Override
      public void addTo(WriteBatch batch, GroupCommit.BatchState state) throws RocksDBException {
        batch.put(outbound, outboundKey(destination, seq), value);
        batch.put(expiry, outboundExpiryKey(item.expiresAt().toEpochMilli(), destination, seq), EMPTY);
        batch.merge(usage, OUTBOUND_BYTES, delta(bytes));
      }

      @Override
      public boolean needsSync() {
        return true;
      }

      @Override
      public void written(Throwable failure) {
        if (failure != null) {
          done.completeExceptionally(failure);
          return;
        }
        outboundBytes.addAndGet(bytes);
        done.complete(seq);
      }
    });
  }

  /**
   * Removes an outbound item and, in the same write batch, appends {@code outcome} (if not null)
   * to its forwarder's mailbox; synced when there is an outcome. The future completes with false
   * if the item was gone already (then no outcome is written either).
   */
  public CompletableFuture<Boolean> completeOutbound(byte[] destination, long seq, OutcomeEnvelope outcome) {
    CompletableFuture<Boolean> done = new CompletableFuture<>();
    space.hasRoom();
    byte[] key = outboundKey(destination, seq);
    MailboxSequencer.Begun begun = outcome == null ? null : sequences.begin(outcome.mailbox());
    commits.submit(new GroupCommit.Change() {
      private boolean removed;
      private int bytes;

      @Override
      public void addTo(WriteBatch batch, GroupCommit.BatchState state) throws RocksDBException {
        byte[] value = db.get(outbound, key);
        if (value == null || !state.deleted.add(ByteBuffer.wrap(key))) {
          return;
        }
        removed = true;
        bytes = OutboundItem.bodyLength(value);
        batch.delete(outbound, key);
        batch.delete(expiry, outboundExpiryKey(OutboundItem.expiresAtMillis(value), destination, seq));
        batch.merge(usage, OUTBOUND_BYTES, delta(-bytes));
        if (outcome != null) {
          addAppend(batch, outcome.mailbox(), begun.seq(), outcome.envelopeId(), outcome.body(),
              outcome.expiresAt());
        }
      }

      @Override
      public boolean needsSync() {
        return outcome != null;
      }

      @Override
      public void written(Throwable failure) {
        QueuedEnvelope stored = null;
        if (failure == null && removed) {
          outboundBytes.addAndGet(-bytes);
          if (outcome != null) {
            queuedBytes.addAndGet(outcome.body().length);
            queuedEnvelopes.incrementAndGet();
            stored = new QueuedEnvelope(outcome.mailbox(), begun.seq(), outcome.envelopeId(), outcome.body(),
                outcome.expiresAt());
          }
        }
        try {
          if (begun != null) {
            sequences.finish(outcome.mailbox(), begun, stored);
          }
        } finally {
          if (failure == null) {
            done.complete(removed);
          } else {
            done.completeExceptionally(failure);
          }
        }
      }
    });
    return done;
  }

  /**
   * Up to {@code limit} items for {@code destination} that together weigh at most {@code maxBytes}
   * (always at least one item), each weighing {@link #wireWeight}: the oldest, or with
   * {@code newest} the most recent ones (still returned oldest first). A batch read so fits the
   * peer's message limit whatever its mix of sizes.
   */
  public List<OutboundEntry> readOutbound(byte[] destination, boolean newest, int limit, long maxBytes) {
    return readOutbound(destination, newest, 0, limit, maxBytes);
  }

  /**
   * Like {@link #readOutbound(byte[], boolean, int, long)}; the oldest items are read from
   * position {@code fromSeq} on. A reader that knows nothing waits below a position should start
   * there: delivered items leave tombstones behind in RocksDB until a compaction, and a read
   * from the queue's start steps over every one of them.
   */
  public List<OutboundEntry> readOutbound(byte[] destination, boolean newest, long fromSeq, int limit, long maxBytes) {
    List<OutboundEntry> out = new ArrayList<>();
    try (Slice lower = new Slice(outboundKey(destination, 0));
        Slice upper = new Slice(outboundKey(destination, -1L));
        ReadOptions ro = new ReadOptions().setIterateLowerBound(lower).setIterateUpperBound(upper);
        RocksIterator it = db.newIterator(outbound, ro)) {
      long bytes = 0;
      if (newest) {
        it.seekForPrev(outboundKey(destination, Long.MAX_VALUE));
      } else {
        it.seek(outboundKey(destination, fromSeq));
      }
      while (it.isValid() && out.size() < limit) {
        byte[] key = it.key();
        if (!Arrays.equals(key, 0, 32, destination, 0, 32)) {
          break;
        }
        OutboundItem item = OutboundItem.decode(it.value());
        long weight = wireWeight(item);
        if (!out.isEmpty() && bytes + weight > maxBytes) {
          break;
        }
        out.add(new OutboundEntry(destination, ByteBuffer.wrap(key, 32, 8).getLong(), item));
        bytes += weight;
        if (newest) {
          it.prev();
        } else {
          it.next();
        }
      }
      it.status();
    } catch (RocksDBException e) {
      throw new StoreException("cannot read outbound queue", e);
    }
    if (newest) {
      Collections.reverse(out);
    }
    return out;
  }

  /** Bytes an item takes in a Deliver request, about: body, seal and room for its other fields. */
  public static long wireWeight(OutboundItem item) {
    return item.body().length + item.sealedRouting().length + 64L;
  }

  /** The outbound item at a position, if it is still there. */
  public Optional<OutboundItem> outboundItem(byte[] destination, long seq) {
    byte[] v = get(outbound, outboundKey(destination, seq));
    return v == null ? Optional.empty() : Optional.of(OutboundItem.decode(v));
  }

  /** Items waiting per destination fingerprint (a key-only scan, for start-up). */
  public Map<ByteBuffer, Long> outboundCounts() {
    Map<ByteBuffer, Long> counts = new LinkedHashMap<>();
    try (RocksIterator it = db.newIterator(outbound)) {
      for (it.seekToFirst(); it.isValid(); it.next()) {
        counts.merge(ByteBuffer.wrap(Arrays.copyOf(it.key(), 32)), 1L, Long::sum);
      }
      it.status();
    } catch (RocksDBException e) {
      throw new StoreException("cannot read outbound queue", e);
    }
    return counts;
  }

  private long maxOutboundSeq() {
    long max = 0;
    try (RocksIterator it = db.newIterator(outbound)) {
      for (it.seekToFirst(); it.isValid(); it.next()) {
        max = Math.max(max, ByteBuffer.wrap(it.key(), 32, 8).getLong());
      }
      it.status();
    } catch (RocksDBException e) {
      throw new StoreException("cannot read outbound queue", e);
    }
    return max;
  }

  /** (destination, seq) of up to one sweep batch of outbound items expired by {@code now}. */
  public List<OutboundEntry> expiredOutbound(Instant now) {
    List<OutboundEntry> due = new ArrayList<>();
    for (byte[] key : expiredKeys(OUTBOUND_KIND, now)) {
      byte[] fp = Arrays.copyOfRange(key, 9, 41);
      long seq = ByteBuffer.wrap(key, 41, 8).getLong();
      Optional<OutboundItem> item = outboundItem(fp, seq);
      if (item.isPresent()) {
        due.add(new OutboundEntry(fp, seq, item.get()));
      } else {
        try {
          db.delete(expiry, asyncWrite, key);
        } catch (RocksDBException e) {
          throw new StoreException("cannot delete from expiry index", e);
        }
      }
    }
    return due;
  }

  /** Body bytes in custody for other servers (they count against the storage budget). */
  public long outboundBytes() {
    return outboundBytes.get();
  }

  /** Until when the item {@code itemId} from {@code peer} is remembered as delivered, if it is. */
  public Optional<Instant> seenUntil(byte[] peer, byte[] itemId) {
    byte[] v = get(seen, SeenMark.key(peer, itemId));
    return v == null ? Optional.empty() : Optional.of(Instant.ofEpochMilli(ByteBuffer.wrap(v).getLong()));
  }

  /** Forgets delivered item ids whose time is up; returns how many. */
  public int deleteExpiredSeen(Instant now) {
    return sweep(SEEN_KIND, now, key -> {
      try (WriteBatch batch = new WriteBatch()) {
        batch.delete(expiry, key);
        batch.delete(seen, Arrays.copyOfRange(key, 9, 9 + SeenMark.KEY_LENGTH));
        db.write(asyncWrite, batch);
      } catch (RocksDBException e) {
        throw new StoreException("cannot delete seen item id", e);
      }
      return true;
    });
  }

  private static byte[] outboundKey(byte[] destination, long seq) {
    return ByteBuffer.allocate(40).put(destination).putLong(seq).array();
  }

  private static byte[] outboundExpiryKey(long expiresAtMillis, byte[] destination, long seq) {
    return ByteBuffer.allocate(1 + 8 + 32 + 8).put(OUTBOUND_KIND).putLong(expiresAtMillis).put(destination)
        .putLong(seq).array();
  }

  private static byte[] queueKey(MailboxId mailbox, long seq) {
    return ByteBuffer.allocate(40).put(mailbox.bytes()).putLong(seq).array();
  }

  private static byte[] expiryKey(byte kind, long expiresAtMillis, MailboxId mailbox, long seq) {
    return ByteBuffer.allocate(1 + 8 + 32 + 8)
        .put(kind).putLong(expiresAtMillis).put(mailbox.bytes()).putLong(seq).array();
  }

  private static byte[] usageKey(MailboxId mailbox, byte which) {
    return ByteBuffer.allocate(33).put(mailbox.bytes()).put(which).array();
  }

  /** The uint64add operator reads little-endian; a negative delta wraps, which subtracts. */
  private static byte[] delta(long n) {
    return ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(n).array();
  }

  private long counter(byte[] key) {
    byte[] v = get(usage, key);
    return v == null ? 0 : ByteBuffer.wrap(v).order(ByteOrder.LITTLE_ENDIAN).getLong();
  }

  private void put(ColumnFamilyHandle cf, byte[] key, byte[] value) {
    try {
      db.put(cf, syncWrite, key, value);
    } catch (RocksDBException e) {
      throw new StoreException("cannot write", e);
    }
  }

  private byte[] get(ColumnFamilyHandle cf, byte[] key) {
    try {
      return db.get(cf, key);
    } catch (RocksDBException e) {
      throw new StoreException("cannot read", e);
    }
  }

  private static void checkFormat(byte format) {
    if (format != FORMAT) {
      throw new StoreException("unknown record format " + format + " (newer server's data?)", null);
    }
  }

  /**
   * Closes the store. Memtables are flushed first, so that the next start replays no log; if
   * the flush fails the log still holds everything and the next start replays it.
   */
  @Override
  public void close() {
    commits.close();
    reclaimer.shutdown();
    try {
      reclaimer.awaitTermination(30, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    try (FlushOptions flush = new FlushOptions().setWaitForFlush(true)) {
      db.flush(flush, handles);
    } catch (RocksDBException e) {
      // Nothing is lost: the WAL is replayed at the next open.
    }
    synchronized (propertyLock) {
      closed = true;
    }
    syncWrite.close();
    asyncWrite.close();
    handles.forEach(ColumnFamilyHandle::close);
    db.close();
    counterOptions.close();
    cfOptions.close();
    dbOptions.close();
    sstFiles.close();
  }
}
