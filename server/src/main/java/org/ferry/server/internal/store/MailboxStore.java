package org.ferry.server.internal.store;

import static java.nio.charset.StandardCharsets.US_ASCII;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;
import org.ferry.server.internal.mailbox.InvitationBlob;
import org.ferry.server.internal.mailbox.MailboxId;
import org.ferry.server.internal.mailbox.MailboxRecord;
import org.ferry.server.internal.mailbox.QueuedEnvelope;
import org.rocksdb.ColumnFamilyDescriptor;
import org.rocksdb.ColumnFamilyHandle;
import org.rocksdb.ColumnFamilyOptions;
import org.rocksdb.DBOptions;
import org.rocksdb.ReadOptions;
import org.rocksdb.RocksDB;
import org.rocksdb.RocksDBException;
import org.rocksdb.RocksIterator;
import org.rocksdb.Slice;
import org.rocksdb.WriteOptions;

/**
 * The server's durable state in RocksDB.
 *
 * <p>Column families: {@code mailboxes} (id -> owner key, capability hash, created),
 * {@code queue} (id | seq, big-endian -> envelope, so iteration order is delivery order),
 * {@code blobs} (id -> encrypted invitation bundle), {@code meta} (sequence ceiling).
 *
 * <p>Writes that a client is told about (mailbox creation, envelopes, invitations, taking an
 * invitation) are synced to the WAL before they return; RocksDB shares one fsync among
 * concurrent writers. Deleting an acknowledged delivery is not synced: if it is lost in a
 * crash, the envelope is delivered again and the client drops the duplicate.
 */
public final class MailboxStore implements AutoCloseable {
  private static final byte FORMAT = 1;
  private static final byte[] SEQ_CEILING = "seq-ceiling".getBytes(US_ASCII);

  static {
    RocksDB.loadLibrary();
  }

  private final DBOptions dbOptions;
  private final ColumnFamilyOptions cfOptions;
  private final RocksDB db;
  private final List<ColumnFamilyHandle> handles;
  private final ColumnFamilyHandle mailboxes;
  private final ColumnFamilyHandle queue;
  private final ColumnFamilyHandle blobs;
  private final ColumnFamilyHandle meta;
  private final WriteOptions syncWrite;
  private final WriteOptions asyncWrite;
  private final SequenceAllocator sequences;

  private MailboxStore(
      DBOptions dbOptions, ColumnFamilyOptions cfOptions, RocksDB db, List<ColumnFamilyHandle> h)
      throws RocksDBException {
    this.dbOptions = dbOptions;
    this.cfOptions = cfOptions;
    this.db = db;
    this.handles = h;
    this.mailboxes = h.get(1);
    this.queue = h.get(2);
    this.blobs = h.get(3);
    this.meta = h.get(4);
    this.syncWrite = new WriteOptions().setSync(true);
    this.asyncWrite = new WriteOptions();
    byte[] ceiling = db.get(meta, SEQ_CEILING);
    this.sequences =
        new SequenceAllocator(ceiling == null ? 0 : ByteBuffer.wrap(ceiling).getLong(), this::persistCeiling);
  }

  /** Opens (or creates) the store in {@code directory}. */
  public static MailboxStore open(Path directory) throws IOException {
    Files.createDirectories(directory);
    DBOptions dbOptions =
        new DBOptions().setCreateIfMissing(true).setCreateMissingColumnFamilies(true);
    ColumnFamilyOptions cfOptions = new ColumnFamilyOptions();
    List<ColumnFamilyDescriptor> descriptors = new ArrayList<>();
    descriptors.add(new ColumnFamilyDescriptor(RocksDB.DEFAULT_COLUMN_FAMILY, cfOptions));
    for (String name : List.of("mailboxes", "queue", "blobs", "meta")) {
      descriptors.add(new ColumnFamilyDescriptor(name.getBytes(US_ASCII), cfOptions));
    }
    List<ColumnFamilyHandle> handles = new ArrayList<>();
    try {
      RocksDB db = RocksDB.open(dbOptions, directory.toString(), descriptors, handles);
      return new MailboxStore(dbOptions, cfOptions, db, handles);
    } catch (RocksDBException e) {
      handles.forEach(ColumnFamilyHandle::close);
      cfOptions.close();
      dbOptions.close();
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

  public void createMailbox(MailboxRecord record) {
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

  /** Appends durably and returns the envelope's position in its mailbox. */
  public long append(MailboxId mailbox, byte[] envelopeId, byte[] body, Instant expiresAt) {
    long seq = sequences.begin();
    try {
      ByteBuffer v = ByteBuffer.allocate(1 + 8 + envelopeId.length + body.length);
      v.put(FORMAT).putLong(expiresAt.toEpochMilli()).put(envelopeId).put(body);
      put(queue, queueKey(mailbox, seq), v.array());
      return seq;
    } finally {
      sequences.complete(seq);
    }
  }

  /**
   * Reads up to {@code limit} envelopes of {@code mailbox} with positions from {@code fromSeq}
   * on, in order, stopping before any position whose write may still be in progress.
   */
  public List<QueuedEnvelope> read(MailboxId mailbox, long fromSeq, int limit) {
    long upTo = sequences.visibleUpTo();
    List<QueuedEnvelope> out = new ArrayList<>();
    if (fromSeq > upTo) {
      return out;
    }
    byte[] prefix = mailbox.bytes();
    try (Slice upper = new Slice(queueKey(mailbox, upTo + 1));
        ReadOptions ro = new ReadOptions().setIterateUpperBound(upper);
        RocksIterator it = db.newIterator(queue, ro)) {
      for (it.seek(queueKey(mailbox, fromSeq)); it.isValid() && out.size() < limit; it.next()) {
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
      }
      it.status();
    } catch (RocksDBException e) {
      throw new StoreException("cannot read queue", e);
    }
    return out;
  }

  /** Removes a delivered (or expired) envelope. Not synced: see the class comment. */
  public void delete(MailboxId mailbox, long seq) {
    try {
      db.delete(queue, asyncWrite, queueKey(mailbox, seq));
    } catch (RocksDBException e) {
      throw new StoreException("cannot delete from queue", e);
    }
  }

  public void putInvitation(InvitationBlob blob) {
    ByteBuffer v = ByteBuffer.allocate(1 + 1 + 8 + 32 + blob.blob().length);
    v.put(FORMAT).put((byte) (blob.taken() ? 1 : 0)).putLong(blob.expiresAt().toEpochMilli());
    v.put(blob.fetchTokenHash()).put(blob.blob());
    put(blobs, blob.mailbox().bytes(), v.array());
  }

  public Optional<InvitationBlob> invitation(MailboxId mailbox) {
    byte[] v = get(blobs, mailbox.bytes());
    if (v == null) {
      return Optional.empty();
    }
    ByteBuffer b = ByteBuffer.wrap(v);
    checkFormat(b.get());
    boolean taken = b.get() != 0;
    Instant expires = Instant.ofEpochMilli(b.getLong());
    byte[] tokenHash = new byte[32];
    b.get(tokenHash);
    byte[] blob = new byte[b.remaining()];
    b.get(blob);
    return Optional.of(new InvitationBlob(mailbox, tokenHash, blob, expires, taken));
  }

  public void deleteInvitation(MailboxId mailbox) {
    try {
      db.delete(blobs, syncWrite, mailbox.bytes());
    } catch (RocksDBException e) {
      throw new StoreException("cannot delete invitation", e);
    }
  }

  private static byte[] queueKey(MailboxId mailbox, long seq) {
    return ByteBuffer.allocate(40).put(mailbox.bytes()).putLong(seq).array();
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

  @Override
  public void close() {
    syncWrite.close();
    asyncWrite.close();
    handles.forEach(ColumnFamilyHandle::close);
    db.close();
    cfOptions.close();
    dbOptions.close();
  }
}
