package org.ferry.server.internal.store;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.FileStore;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Watches the free space of the store's disk so that a full disk refuses new envelopes and
 * mailboxes before RocksDB runs out, and owners can still drain (deletes need a little room for
 * the write-ahead log).
 *
 * <p>New data is refused while the space usable by this process is below {@code reserveBytes}.
 * A <b>reserve file</b> of {@code ballastBytes} beside the store is given back to the disk as soon
 * as usable space falls below half the reserve (something else is filling the disk) or a write
 * fails for lack of space, so that acknowledgements and RocksDB's flushes find room; it is made
 * again once the disk has room for it and the reserve.
 *
 * <p>Usable space is read (one {@code statvfs}, about a microsecond) before every write that is
 * let through, so that something else filling the disk is noticed before RocksDB meets a full
 * disk: RocksDB stops all writes after it has failed to write its log.
 */
public final class DiskSpace {
  private static final Logger log = LoggerFactory.getLogger(DiskSpace.class);

  /** Default space kept free: new writes are refused below it: 64 MiB. */
  public static final long DEFAULT_RESERVE_BYTES = 64L << 20;
  /** Default size of the reserve file: 16 MiB. */
  public static final long DEFAULT_BALLAST_BYTES = 16L << 20;

  private final FileStore disk;
  private final Path ballast;
  private final long reserveBytes;
  private final long ballastBytes;
  private boolean room = true;

  /**
   * @param directory the store's directory (the reserve file goes beside it)
   * @param reserveBytes usable space below which new data is refused
   * @param ballastBytes size of the reserve file; 0 for none
   * @throws IOException if the directory's file system cannot be read
   */
  DiskSpace(Path directory, long reserveBytes, long ballastBytes) throws IOException {
    if (reserveBytes < 0 || ballastBytes < 0) {
      throw new IllegalArgumentException("disk reserve must not be negative");
    }
    this.disk = Files.getFileStore(directory);
    this.ballast = directory.resolveSibling(directory.getFileName() + ".reserve");
    this.reserveBytes = reserveBytes;
    this.ballastBytes = ballastBytes;
    refresh();
  }

  /**
   * Whether new data may be written now (usable space at or above the reserve). Reading it also
   * gives the reserve file back when the disk runs low, so call it before deletes too.
   */
  public synchronized boolean hasRoom() {
    refresh();
    return room;
  }

  /** Bytes of the disk this process may use now; -1 if it cannot be read. */
  public long usableBytes() {
    try {
      return disk.getUsableSpace();
    } catch (IOException e) {
      return -1;
    }
  }

  /** Usable space below which new data is refused, in bytes. */
  public long reserveBytes() {
    return reserveBytes;
  }

  /** What the last reading said, without reading again. */
  public synchronized boolean hadRoom() {
    return room;
  }

  /** A write failed for lack of space: give the reserve file back and read the space again. */
  public synchronized void writeFailed() {
    releaseBallast();
    refresh();
  }

  private void refresh() {
    long usable;
    try {
      usable = disk.getUsableSpace();
    } catch (IOException e) {
      log.warn("cannot read the store's free disk space: {}", e.toString());
      return;
    }
    boolean hadRoom = room;
    room = usable >= reserveBytes;
    if (usable < reserveBytes / 2) {
      releaseBallast();
    } else if (usable >= reserveBytes + 2 * ballastBytes) {
      makeBallast();
    }
    if (hadRoom && !room) {
      log.warn("disk nearly full ({} MiB usable, {} MiB kept free): refusing new envelopes and mailboxes"
          + " with SERVER_FULL; owners can still collect theirs", usable >> 20, reserveBytes >> 20);
    } else if (!hadRoom && room) {
      log.info("disk has room again ({} MiB usable): accepting new envelopes", usable >> 20);
    }
  }

  private void releaseBallast() {
    try {
      if (Files.deleteIfExists(ballast)) {
        log.warn("disk nearly full: gave back the {} MiB reserve file so that owners can still drain",
            ballastBytes >> 20);
      }
    } catch (IOException e) {
      log.warn("cannot remove the disk reserve file: {}", e.toString());
    }
  }

  private void makeBallast() {
    if (ballastBytes == 0 || Files.exists(ballast)) {
      return;
    }
    Path partial = ballast.resolveSibling(ballast.getFileName() + ".partial");
    try (FileChannel ch = FileChannel.open(partial, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
        StandardOpenOption.TRUNCATE_EXISTING)) {
      // Real blocks, not a sparse file: zeros written out.
      ByteBuffer zeros = ByteBuffer.allocate(1 << 20);
      for (long written = 0; written < ballastBytes; ) {
        zeros.clear().limit((int) Math.min(zeros.capacity(), ballastBytes - written));
        written += ch.write(zeros);
      }
      ch.force(true);
    } catch (IOException e) {
      try {
        Files.deleteIfExists(partial);
      } catch (IOException ignored) {
        // Tried.
      }
      return;
    }
    try {
      Files.move(partial, ballast, java.nio.file.StandardCopyOption.ATOMIC_MOVE);
    } catch (IOException e) {
      log.warn("cannot make the disk reserve file: {}", e.toString());
    }
  }
}
