package org.ferry.datadir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.charset.StandardCharsets;
import java.nio.file.AccessDeniedException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.FileAttribute;
import java.nio.file.attribute.PosixFileAttributes;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.TimeUnit;

/**
 * An exclusive hold on a data directory, for as long as the process runs or until {@link #close}:
 * every Ferry process (server, relay, client) takes it before it creates or changes anything in
 * the directory, so that two processes never make two keys, or write one store, at once.
 *
 * <p>The lock is an OS file lock ({@code fcntl}/{@code LockFileEx} through
 * {@link FileChannel#tryLock()}) on {@value #FILE_NAME} in the directory. The OS drops it when
 * the process ends, however it ends, so there is never a stale lock to remove by hand; the file
 * itself stays (removing it would let a waiting process lock a file no one else sees). If the
 * directory is missing it is created, owner-only ({@code rwx------}), and nothing else is made
 * in it before the lock is held. Within one JVM a second hold on the same directory is refused
 * too.
 *
 * <p>Not for network file systems whose locks are advisory across hosts or not kept (some NFS
 * setups): give each host its own data directory.
 */
public final class DataDirectoryLock implements AutoCloseable {
  /** The lock file's name in the data directory. */
  public static final String FILE_NAME = ".lock";

  private static final long POLL_NANOS = TimeUnit.MILLISECONDS.toNanos(50);

  private final Path directory;
  private final FileChannel channel;
  private final FileLock lock;

  private DataDirectoryLock(Path directory, FileChannel channel, FileLock lock) {
    this.directory = directory;
    this.channel = channel;
    this.lock = lock;
  }

  /**
   * Takes the lock on {@code directory} (created owner-only if missing), or refuses at once.
   *
   * @throws DataDirectoryInUseException if another process (or another holder in this JVM) has it
   * @throws IOException if the directory or its lock file cannot be made or opened
   */
  public static DataDirectoryLock acquire(Path directory) throws IOException {
    DataDirectoryLock held = tryAcquire(directory);
    if (held == null) {
      throw new DataDirectoryInUseException(directory, holder(directory));
    }
    return held;
  }

  /**
   * Takes the lock on {@code directory}, waiting up to {@code patience} for another holder to let
   * go (checked every 50 ms); for short commands that should queue behind one another rather
   * than fail. {@code onWait} runs once, on this thread, if the first try finds the lock taken.
   *
   * @throws DataDirectoryInUseException if it is still held after {@code patience}
   * @throws IOException if the directory or its lock file cannot be made or opened
   * @throws InterruptedException if interrupted while waiting
   */
  public static DataDirectoryLock acquire(Path directory, Duration patience, Runnable onWait)
      throws IOException, InterruptedException {
    Objects.requireNonNull(onWait, "onWait");
    long deadline = System.nanoTime() + patience.toNanos();
    DataDirectoryLock held = tryAcquire(directory);
    if (held != null) {
      return held;
    }
    onWait.run();
    while (true) {
      long left = deadline - System.nanoTime();
      if (left <= 0) {
        throw new DataDirectoryInUseException(directory, holder(directory));
      }
      TimeUnit.NANOSECONDS.sleep(Math.min(left, POLL_NANOS));
      held = tryAcquire(directory);
      if (held != null) {
        return held;
      }
    }
  }

  /** The directory held. */
  public Path directory() {
    return directory;
  }

  /** Lets go of the directory; the lock file stays. Idempotent. */
  @Override
  public void close() {
    try {
      if (lock.isValid()) {
        lock.release();
      }
      channel.close();
    } catch (IOException e) {
      // Closing the channel releases the lock in any case.
    }
  }

  private static DataDirectoryLock tryAcquire(Path directory) throws IOException {
    FileChannel channel;
    try {
      createOwnerOnly(directory);
      checkOnlyOursToChange(directory);
      channel = open(directory.resolve(FILE_NAME));
    } catch (AccessDeniedException e) {
      throw new IOException("cannot use data directory " + directory + ": permission denied ("
          + ownerOf(directory) + "; run Ferry as that user, or give it a directory of its own)", e);
    }
    try {
      FileLock lock;
      try {
        lock = channel.tryLock();
      } catch (OverlappingFileLockException e) {
        lock = null;
      }
      if (lock == null) {
        channel.close();
        return null;
      }
      // Who holds it, for the message another process prints; not needed for the lock itself.
      channel.truncate(0);
      channel.write(ByteBuffer.wrap((ProcessHandle.current().pid() + "\n").getBytes(StandardCharsets.US_ASCII)), 0);
      return new DataDirectoryLock(directory, channel, lock);
    } catch (IOException | RuntimeException e) {
      channel.close();
      throw e;
    }
  }

  private static FileChannel open(Path file) throws IOException {
    Set<StandardOpenOption> options = Set.of(StandardOpenOption.CREATE, StandardOpenOption.READ, StandardOpenOption.WRITE);
    try {
      return FileChannel.open(file, options, PosixFilePermissions.asFileAttribute(
          PosixFilePermissions.fromString("rw-------")));
    } catch (UnsupportedOperationException e) {
      return FileChannel.open(file, options);
    }
  }

  private static void createOwnerOnly(Path directory) throws IOException {
    if (Files.isDirectory(directory)) {
      return;
    }
    FileAttribute<Set<PosixFilePermission>> ownerOnly =
        PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------"));
    try {
      Files.createDirectories(directory, ownerOnly);
    } catch (UnsupportedOperationException e) {
      Files.createDirectories(directory);
    } catch (FileAlreadyExistsException e) {
      if (!Files.isDirectory(directory)) {
        throw new IOException("data directory " + directory + " exists but is not a directory", e);
      }
    }
  }

  /**
   * Refuses a directory that belongs to another user (whoever can replace its files can replace
   * the keys in it), and makes one of ours that the group or others may change owner-only.
   */
  private static void checkOnlyOursToChange(Path directory) throws IOException {
    PosixFileAttributes attributes;
    try {
      attributes = Files.readAttributes(directory, PosixFileAttributes.class);
    } catch (UnsupportedOperationException notPosix) {
      return;
    }
    String me = System.getProperty("user.name");
    String owner = attributes.owner().getName();
    if (!owner.equals(me)) {
      throw new IOException("data directory " + directory + " belongs to " + owner + ", not to " + me
          + ": run Ferry as " + owner + ", or give it a directory of its own");
    }
    Set<PosixFilePermission> p = attributes.permissions();
    if (p.contains(PosixFilePermission.GROUP_WRITE) || p.contains(PosixFilePermission.OTHERS_WRITE)) {
      Files.setPosixFilePermissions(directory, PosixFilePermissions.fromString("rwx------"));
    }
  }

  private static String ownerOf(Path directory) {
    for (Path p = directory; p != null; p = p.getParent()) {
      try {
        if (Files.exists(p)) {
          return "it belongs to " + Files.getOwner(p).getName() + ", not to " + System.getProperty("user.name");
        }
      } catch (IOException | UnsupportedOperationException e) {
        break;
      }
    }
    return "this user may not write there";
  }

  /** The holder's process id as its lock file says, or 0 if unknown. */
  private static long holder(Path directory) {
    try {
      String text = Files.readString(directory.resolve(FILE_NAME), StandardCharsets.US_ASCII).strip();
      return text.matches("[0-9]{1,19}") ? Long.parseLong(text) : 0;
    } catch (IOException | NumberFormatException e) {
      return 0;
    }
  }
}
