package org.ferry.datadir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.FileSystemException;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Set;

/**
 * Files only their owner may read (keys, secrets, bridge lines), written so that none is ever
 * half there: the content goes to a temporary file in the same directory, is synced, and then
 * takes the file's name in one step.
 */
public final class PrivateFiles {
  private PrivateFiles() {}

  /** Writes {@code content} (US-ASCII) owner-only, replacing {@code file} atomically if it exists. */
  public static void write(Path file, String content) throws IOException {
    write(file, content.getBytes(StandardCharsets.US_ASCII));
  }

  /** Writes {@code content} owner-only, replacing {@code file} atomically if it exists. */
  public static void write(Path file, byte[] content) throws IOException {
    Path tmp = temporary(file, content);
    try {
      Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE);
    } finally {
      Files.deleteIfExists(tmp);
    }
  }

  /** As {@link #createNew(Path, byte[])}, for text (US-ASCII). */
  public static void createNew(Path file, String content) throws IOException {
    createNew(file, content.getBytes(StandardCharsets.US_ASCII));
  }

  /**
   * Creates {@code file} owner-only with {@code content}, complete or not at all, and never over
   * an existing file: a key made by another process is never replaced.
   *
   * @throws FileAlreadyExistsException if {@code file} exists (then it is left as it was)
   * @throws IOException if it cannot be written
   */
  public static void createNew(Path file, byte[] content) throws IOException {
    // A bare name ("x.png") has no parent: its directory is the working directory.
    file = file.toAbsolutePath();
    Path tmp = temporary(file, content);
    try {
      try {
        // link(2) gives the finished file its name, and fails if the name is taken.
        Files.createLink(file, tmp);
      } catch (UnsupportedOperationException | FileSystemException e) {
        if (e instanceof FileAlreadyExistsException exists) {
          throw exists;
        }
        // No hard links here (some mounted file systems): O_EXCL, also never over a file.
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
          Files.setPosixFilePermissions(file, PosixFilePermissions.fromString("rw-------"));
          writeFully(ch, content);
        }
      }
      syncDirectory(file.getParent());
    } finally {
      Files.deleteIfExists(tmp);
    }
  }

  /**
   * Makes {@code directory} and everything under it owner-only, whatever the umask they were
   * made under: directories {@code rwx------}, files {@code rw-------}. Symbolic links are
   * neither followed nor changed. Files that other libraries make later in these directories
   * (RocksDB's tables and logs) are out of other users' reach through the directory's mode even
   * before the next call. Does nothing where the file system has no POSIX permissions.
   *
   * @throws IOException if a mode cannot be changed (a file owned by someone else)
   */
  public static void restrictTree(Path directory) throws IOException {
    if (!Files.getFileStore(directory).supportsFileAttributeView("posix")) {
      return;
    }
    Set<PosixFilePermission> dirMode = PosixFilePermissions.fromString("rwx------");
    Set<PosixFilePermission> fileMode = PosixFilePermissions.fromString("rw-------");
    Files.walkFileTree(directory, new SimpleFileVisitor<>() {
      @Override
      public FileVisitResult preVisitDirectory(Path dir, BasicFileAttributes attrs) throws IOException {
        setIfOther(dir, dirMode);
        return FileVisitResult.CONTINUE;
      }

      @Override
      public FileVisitResult visitFile(Path file, BasicFileAttributes attrs) throws IOException {
        if (attrs.isRegularFile()) {
          setIfOther(file, fileMode);
        }
        return FileVisitResult.CONTINUE;
      }

      @Override
      public FileVisitResult visitFileFailed(Path file, IOException e) throws IOException {
        if (e instanceof java.nio.file.NoSuchFileException) {
          return FileVisitResult.CONTINUE; // removed meanwhile (a RocksDB log rolled over)
        }
        throw e;
      }
    });
  }

  private static void setIfOther(Path path, Set<PosixFilePermission> mode) throws IOException {
    try {
      if (!Files.getPosixFilePermissions(path, LinkOption.NOFOLLOW_LINKS).equals(mode)) {
        Files.setPosixFilePermissions(path, mode);
      }
    } catch (java.nio.file.NoSuchFileException e) {
      // Removed meanwhile.
    }
  }

  private static Path temporary(Path file, byte[] content) throws IOException {
    Path dir = file.toAbsolutePath().getParent();
    Path tmp = Files.createTempFile(dir, "." + file.getFileName().toString(), ".tmp");
    try {
      Files.setPosixFilePermissions(tmp, PosixFilePermissions.fromString("rw-------"));
      try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING)) {
        writeFully(ch, content);
      }
      return tmp;
    } catch (IOException | RuntimeException e) {
      Files.deleteIfExists(tmp);
      throw e;
    }
  }

  private static void writeFully(FileChannel ch, byte[] content) throws IOException {
    ByteBuffer buf = ByteBuffer.wrap(content);
    while (buf.hasRemaining()) {
      ch.write(buf);
    }
    ch.force(true);
  }

  /** Makes a new name in {@code dir} durable; best effort where directories cannot be opened. */
  private static void syncDirectory(Path dir) {
    try (FileChannel ch = FileChannel.open(dir.toAbsolutePath(), StandardOpenOption.READ)) {
      ch.force(true);
    } catch (IOException e) {
      // Not every platform can sync a directory; the file itself is synced.
    }
  }
}
