package org.ferry.sdk.internal.store;

import static java.nio.charset.StandardCharsets.UTF_8;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import javax.crypto.AEADBadTagException;
import org.ferry.datadir.PrivateFiles;
import org.ferry.sdk.FerryException;
import org.ferry.sdk.internal.crypto.AesGcm;
import org.rocksdb.Options;
import org.rocksdb.RocksDB;
import org.rocksdb.RocksDBException;
import org.rocksdb.RocksIterator;
import org.rocksdb.WriteBatch;
import org.rocksdb.WriteOptions;

/**
 * The SDK's durable state: a RocksDB whose values are encrypted with AES-256-GCM under the
 * app's storage key, each bound to its record name so records cannot be swapped. Record names
 * are structural ({@code contact/<random id>}, {@code session/<random id>}) and carry no
 * labels, keys or content.
 *
 * <p>Changes go through a {@link Txn}: its writes are invisible to others until
 * {@link Txn#commit()}, which writes them in one synced batch, so a crash leaves all or none.
 * Transactions are serialised: {@link #begin()} waits while another thread has one open, and
 * {@link Txn#close()} lets the next one in, so a read-modify-write is never lost to another
 * thread's. A thread may open a transaction inside its own (each commits separately). Keep them
 * short: compute and encrypt inside, never wait for the network. Reads outside a transaction
 * ({@link #get}, {@link #scan}) see committed state and never wait.
 */
public final class LocalStore implements AutoCloseable {
  private static final String CHECK = "meta/key-check";
  private static final byte[] CHECK_VALUE = "ferry-local-store-v1".getBytes(UTF_8);

  static {
    RocksDB.loadLibrary();
  }

  private final Path directory;
  private final Options options;
  private final RocksDB db;
  private final WriteOptions syncWrite;
  private final WriteOptions lazyWrite;
  private final byte[] key;
  private final java.util.concurrent.locks.ReentrantLock writer = new java.util.concurrent.locks.ReentrantLock();
  /** Read side: a use of the database under way; write side: closing it. */
  private final java.util.concurrent.locks.ReentrantReadWriteLock life = new java.util.concurrent.locks.ReentrantReadWriteLock();
  private boolean closed;

  private LocalStore(Path directory, Options options, RocksDB db, byte[] key) {
    this.directory = directory;
    this.options = options;
    this.db = db;
    this.syncWrite = new WriteOptions().setSync(true);
    this.lazyWrite = new WriteOptions().setSync(false);
    this.key = key.clone();
  }

  /**
   * Opens or creates the store in {@code directory}. Throws {@link FerryException} with
   * reason STORAGE if the key is wrong or another process has the store open.
   */
  public static LocalStore open(Path directory, byte[] storageKey) {
    if (storageKey.length != 32) {
      throw new IllegalArgumentException("storage key must be 32 bytes: " + storageKey.length);
    }
    Options options = new Options()
        .setCreateIfMissing(true)
        // One info log per open would pile up (a CLI opens the store on every command): keep a
        // few small ones.
        .setKeepLogFileNum(INFO_LOGS_KEPT)
        .setMaxLogFileSize(INFO_LOG_MAX_BYTES);
    RocksDB db;
    try {
      createOwnerOnly(directory);
      // Files of an older version, made under a lax umask, are set owner-only here; the
      // directory is owner-only, so the files RocksDB makes from now on are out of others'
      // reach (and are set owner-only at close).
      PrivateFiles.restrictTree(directory);
      db = RocksDB.open(options, directory.toString());
    } catch (RocksDBException | java.io.IOException e) {
      options.close();
      String msg = e.getMessage() != null && e.getMessage().contains("lock")
          ? "the data directory is in use by another ferry process"
          : "cannot open local store in " + directory + ": " + e.getMessage();
      throw new FerryException(FerryException.Reason.STORAGE, msg, e);
    }
    LocalStore store = new LocalStore(directory, options, db, storageKey);
    try {
      Optional<byte[]> check = store.get(CHECK);
      if (check.isEmpty()) {
        try (Txn txn = store.begin()) {
          txn.put(CHECK, CHECK_VALUE);
          txn.commit();
        }
      } else if (!Arrays.equals(check.get(), CHECK_VALUE)) {
        throw new FerryException(FerryException.Reason.STORAGE, "local store check failed");
      }
    } catch (FerryException e) {
      store.close();
      throw e;
    }
    return store;
  }

  /** RocksDB info logs ({@code LOG}, {@code LOG.old.*}) kept at most, the current one included. */
  static final int INFO_LOGS_KEPT = 3;
  /** Size at which an info log is rolled over: 256 KiB. */
  static final long INFO_LOG_MAX_BYTES = 256 * 1024;

  private static void createOwnerOnly(Path directory) throws java.io.IOException {
    if (!Files.isDirectory(directory)) {
      try {
        Files.createDirectories(directory, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
      } catch (UnsupportedOperationException e) {
        Files.createDirectories(directory);
      }
    }
  }

  /** Reads a committed record. */
  public Optional<byte[]> get(String name) {
    openForUse();
    try {
      byte[] v = db.get(name.getBytes(UTF_8));
      return v == null ? Optional.empty() : Optional.of(decrypt(name, v));
    } catch (RocksDBException e) {
      throw new FerryException(FerryException.Reason.STORAGE, "cannot read local store", e);
    } finally {
      life.readLock().unlock();
    }
  }

  /**
   * Takes the read side of the open/close lock, so that {@link #close} waits for this use;
   * throws CLOSED if the store is closed already. The caller unlocks.
   */
  private void openForUse() {
    life.readLock().lock();
    if (closed) {
      life.readLock().unlock();
      throw new FerryException(FerryException.Reason.CLOSED, "the local store is closed");
    }
  }

  /** All committed records whose names start with {@code prefix}, in name order. */
  public Map<String, byte[]> scan(String prefix) {
    return scan(prefix, prefix, Integer.MAX_VALUE);
  }

  /**
   * Committed records whose names start with {@code prefix} and come after {@code after} (or
   * are {@code after}, when it is the prefix itself), at most {@code limit} of them, in name
   * order: for going through a long list a page at a time.
   */
  public Map<String, byte[]> scan(String prefix, String after, int limit) {
    Map<String, byte[]> out = new java.util.LinkedHashMap<>();
    byte[] p = prefix.getBytes(UTF_8);
    byte[] from = after.getBytes(UTF_8);
    openForUse();
    try (RocksIterator it = db.newIterator()) {
      for (it.seek(from); it.isValid() && out.size() < limit; it.next()) {
        if (!after.equals(prefix) && Arrays.equals(it.key(), from)) {
          continue;
        }
        byte[] k = it.key();
        if (!startsWith(k, p)) {
          break;
        }
        String name = new String(k, UTF_8);
        out.put(name, decrypt(name, it.value()));
      }
    } finally {
      life.readLock().unlock();
    }
    return out;
  }

  /** The number of committed records whose names start with {@code prefix}. */
  public int count(String prefix) {
    byte[] p = prefix.getBytes(UTF_8);
    int n = 0;
    openForUse();
    try (RocksIterator it = db.newIterator()) {
      for (it.seek(p); it.isValid() && startsWith(it.key(), p); it.next()) {
        n++;
      }
    } finally {
      life.readLock().unlock();
    }
    return n;
  }

  /** The last name (in name order) of the committed records under {@code prefix}, if any. */
  public Optional<String> lastName(String prefix) {
    byte[] p = prefix.getBytes(UTF_8);
    byte[] beyond = Arrays.copyOf(p, p.length + 1);
    beyond[p.length] = (byte) 0xFF;
    openForUse();
    try (RocksIterator it = db.newIterator()) {
      it.seekForPrev(beyond);
      return it.isValid() && startsWith(it.key(), p) ? Optional.of(new String(it.key(), UTF_8)) : Optional.empty();
    } finally {
      life.readLock().unlock();
    }
  }

  private static boolean startsWith(byte[] k, byte[] p) {
    return k.length >= p.length && Arrays.equals(k, 0, p.length, p, 0, p.length);
  }

  /** Opens a transaction, waiting while another thread has one open (see the class comment). */
  public Txn begin() {
    writer.lock();
    return new Txn();
  }

  private byte[] decrypt(String name, byte[] value) {
    try {
      return AesGcm.decrypt(key, value, name.getBytes(UTF_8));
    } catch (AEADBadTagException e) {
      throw new FerryException(
          FerryException.Reason.STORAGE,
          "cannot decrypt the local store: wrong storage key or passphrase, or the store is damaged",
          e);
    }
  }

  /**
   * Closes the store (waiting for reads and commits under way; later ones fail with CLOSED),
   * then sets the files RocksDB made meanwhile owner-only too (they were unreachable for others
   * already, in the owner-only directory). Closing twice does nothing.
   */
  @Override
  public void close() {
    life.writeLock().lock();
    try {
      if (closed) {
        return;
      }
      closed = true;
      syncWrite.close();
      lazyWrite.close();
      db.close();
      options.close();
      Arrays.fill(key, (byte) 0);
    } finally {
      life.writeLock().unlock();
    }
    try {
      PrivateFiles.restrictTree(directory);
    } catch (java.io.IOException e) {
      // Still in the owner-only directory.
    }
  }

  /** Pending changes, read-your-writes, committed atomically. */
  public final class Txn implements AutoCloseable {
    private final Map<String, Optional<byte[]>> writes = new HashMap<>();
    private boolean done;
    private boolean released;

    private Txn() {}

    public Optional<byte[]> get(String name) {
      Optional<byte[]> pending = writes.get(name);
      return pending != null ? pending : LocalStore.this.get(name);
    }

    /** Committed records under {@code prefix} with this transaction's changes applied. */
    public Map<String, byte[]> scan(String prefix) {
      Map<String, byte[]> out = new java.util.TreeMap<>(LocalStore.this.scan(prefix));
      writes.forEach(
          (k, v) -> {
            if (k.startsWith(prefix)) {
              if (v.isPresent()) {
                out.put(k, v.get());
              } else {
                out.remove(k);
              }
            }
          });
      return out;
    }

    public void put(String name, byte[] value) {
      writes.put(name, Optional.of(value.clone()));
    }

    public void delete(String name) {
      writes.put(name, Optional.empty());
    }

    /** Writes every change in one synced batch. */
    public void commit() {
      write(syncWrite);
    }

    /**
     * Writes every change in one batch, atomically but without waiting for the disk: a crash
     * (of the machine, not the process) may lose it. Only for changes whose loss is harmless
     * because they are redone or recognised later (forgetting an outbox item the server took:
     * it is sent again and the recipient keeps one copy). A later {@link #commit} makes it
     * durable too.
     */
    public void commitWithoutSync() {
      write(lazyWrite);
    }

    private void write(WriteOptions options) {
      if (done) {
        throw new IllegalStateException("transaction already finished");
      }
      done = true;
      try (WriteBatch batch = new WriteBatch()) {
        List<String> names = new ArrayList<>(writes.keySet());
        for (String name : names) {
          byte[] k = name.getBytes(UTF_8);
          Optional<byte[]> v = writes.get(name);
          if (v.isPresent()) {
            batch.put(k, AesGcm.encrypt(key, v.get(), k));
          } else {
            batch.delete(k);
          }
        }
        openForUse();
        try {
          db.write(options, batch);
        } finally {
          life.readLock().unlock();
        }
      } catch (RocksDBException e) {
        throw new FerryException(FerryException.Reason.STORAGE, "cannot write local store", e);
      }
    }

    /** Discards uncommitted changes and lets the next transaction in. */
    @Override
    public void close() {
      done = true;
      writes.clear();
      if (!released) {
        released = true;
        writer.unlock();
      }
    }
  }
}
