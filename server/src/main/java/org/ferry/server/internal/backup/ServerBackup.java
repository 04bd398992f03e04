package org.ferry.server.internal.backup;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.attribute.FileAttribute;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.security.cert.CertificateException;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import org.ferry.datadir.DataDirectoryInUseException;
import org.ferry.datadir.DataDirectoryLock;
import org.ferry.datadir.PrivateFiles;
import org.ferry.proto.ServerAddress;
import org.ferry.server.internal.store.DiskSpace;
import org.ferry.server.internal.store.MailboxStore;

/**
 * Backups of a server's data directory, and restoring them.
 *
 * <p>A backup is made in two steps. First whoever holds the data directory's lock (the running
 * server, asked over its admin channel, or the backup command itself when no server runs)
 * <b>stages</b> it in {@code DATA/backup-staging/}: a RocksDB checkpoint of the store (hard links
 * to the immutable table files on the same file system, so it costs next to nothing and needs
 * no write access outside the data directory) and copies of everything else in the directory
 * (the key in {@code identity/}, the carriers' keys and secrets in {@code relay/}, the clock).
 * Then the backup command <b>copies</b> the staged files into the backup directory, which may be
 * on another disk, recording each file's size and SHA-256 in {@value #MANIFEST}, written last:
 * a backup without it is incomplete, and restore checks every file against it.
 *
 * <p>Every file and directory of a backup, and of a restored data directory, is owner-only.
 */
public final class ServerBackup {
  /** The backup's manifest: format line, fingerprint, time, then one line per file. */
  public static final String MANIFEST = "ferry-backup";
  /** Where staged backups wait for the backup command, in the data directory. */
  public static final String STAGING = "backup-staging";
  private static final String FORMAT = "ferry-backup 1";
  private static final String STORE = "store";
  private static final String CERT = "identity/server-cert.pem";
  /**
   * What of a data directory is backed up besides the store's checkpoint and the clock: the
   * server's key and the carriers' keys and secrets. Nothing else is (not stray files an operator
   * left there, nor a backup made inside it).
   */
  private static final Set<String> BACKED_UP = Set.of("identity", "relay");
  private static final FileAttribute<Set<PosixFilePermission>> OWNER_ONLY_DIR =
      PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------"));
  private static final FileAttribute<Set<PosixFilePermission>> OWNER_ONLY_FILE =
      PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------"));

  private ServerBackup() {}

  /** What a backup or restore wrote: the server's fingerprint (base64url), files and bytes. */
  public record Summary(String fingerprint, int files, long bytes) {}

  /**
   * Stages a backup of {@code dataDirectory} (whose lock the caller holds, and whose store
   * {@code store} is) in a new directory under {@code DATA/backup-staging/}. Everything
   * acknowledged before the call is in it. The caller saves the clock afterwards if it wants
   * the latest one ({@code saveClock}).
   *
   * @return the staged directory
   * @throws IOException if the checkpoint or a copy fails (then nothing is left staged)
   */
  public static Path stage(Path dataDirectory, MailboxStore store, ClockSaver saveClock) throws IOException {
    Path root = dataDirectory.resolve(STAGING);
    if (!Files.isDirectory(root)) {
      Files.createDirectory(root, OWNER_ONLY_DIR);
    }
    Path staged = Files.createTempDirectory(root, "backup-", OWNER_ONLY_DIR);
    try {
      store.checkpoint(staged.resolve(STORE));
      try (DirectoryStream<Path> entries = Files.newDirectoryStream(dataDirectory)) {
        for (Path entry : entries) {
          String name = entry.getFileName().toString();
          if (BACKED_UP.contains(name)) {
            copyTree(entry, staged.resolve(name));
          }
        }
      }
      saveClock.save(staged.resolve("clock"));
      return staged;
    } catch (IOException | RuntimeException e) {
      deleteTree(staged);
      throw e;
    }
  }

  /** Saves the server's clock to a file; see {@code ServerClock#save}. */
  @FunctionalInterface
  public interface ClockSaver {
    void save(Path file) throws IOException;
  }

  /** Removes backups staged by earlier runs that their command never took (it was killed). */
  public static void removeStaged(Path dataDirectory) throws IOException {
    deleteTree(dataDirectory.resolve(STAGING));
  }

  /**
   * Makes {@code target} owner-only, ready for a backup: created if missing (its parents as
   * usual), accepted if it is an empty directory outside {@code dataDirectory}.
   *
   * @throws IOException if it exists and is not an empty directory, or lies inside the data
   *     directory, naming it
   */
  public static void prepareTarget(Path target, Path dataDirectory) throws IOException {
    Path data = dataDirectory.toAbsolutePath().normalize();
    Path where = target.toAbsolutePath().normalize();
    if (Files.exists(data)) {
      data = data.toRealPath();
      Path existing = where;
      while (existing != null && !Files.exists(existing)) {
        existing = existing.getParent();
      }
      if (existing != null) {
        where = existing.toRealPath().resolve(existing.relativize(where));
      }
    }
    if (where.startsWith(data)) {
      throw new IOException(target + " is inside the data directory " + dataDirectory
          + "; a backup goes elsewhere (another directory, better another disk)");
    }
    if (Files.exists(target, LinkOption.NOFOLLOW_LINKS)) {
      if (!Files.isDirectory(target, LinkOption.NOFOLLOW_LINKS)) {
        throw new IOException(target + " exists and is not a directory; give a new or empty directory");
      }
      if (!isEmpty(target)) {
        throw new IOException(target + " is not empty; a backup never goes over another: give a new or empty directory");
      }
      setMode(target, "rwx------");
      return;
    }
    Path parent = target.toAbsolutePath().getParent();
    if (parent != null) {
      Files.createDirectories(parent);
    }
    try {
      Files.createDirectory(target, OWNER_ONLY_DIR);
    } catch (UnsupportedOperationException e) {
      Files.createDirectory(target);
    }
  }

  /**
   * Copies a staged backup into {@code target} (made by {@link #prepareTarget}), syncing each
   * file, and writes the manifest last.
   */
  public static Summary copyOut(Path staged, Path target) throws IOException {
    String fingerprint = fingerprint(staged.resolve(CERT))
        .orElseThrow(() -> new IOException("the staged backup has no server certificate"));
    List<String> lines = new ArrayList<>();
    lines.add(FORMAT);
    lines.add("fingerprint " + fingerprint);
    lines.add("created " + Instant.now());
    long[] bytes = {0};
    List<Path> files = regularFiles(staged);
    for (Path file : files) {
      Path relative = staged.relativize(file);
      Path to = target.resolve(relative.toString());
      createDirectories(target, to.getParent());
      byte[] sha = copyFile(file, to, null);
      long size = Files.size(to);
      bytes[0] += size;
      lines.add("file " + HexFormat.of().formatHex(sha) + " " + size + " " + unixPath(relative));
    }
    for (Path dir : directories(target)) {
      syncDirectory(dir);
    }
    Path manifest = target.resolve(MANIFEST);
    writeSynced(manifest, (String.join("\n", lines) + "\n").getBytes(StandardCharsets.UTF_8));
    syncDirectory(target);
    return new Summary(fingerprint, files.size(), bytes[0]);
  }

  /**
   * Restores {@code backup} into {@code dataDirectory}, which must be missing or empty and not in
   * use: every file is checked against the manifest's SHA-256 as it is copied, the key last,
   * and the restored store is opened once to check it. If anything fails, what was restored is
   * removed again.
   *
   * @throws DataDirectoryInUseException if a process holds {@code dataDirectory}'s lock
   * @throws IOException if the backup is incomplete or damaged, or the directory not empty
   */
  public static Summary restore(Path backup, Path dataDirectory) throws IOException {
    Manifest manifest = Manifest.read(backup);
    if (Files.exists(dataDirectory, LinkOption.NOFOLLOW_LINKS) && !isEmptyBesidesLock(dataDirectory)) {
      // In use says more than "not empty", and is what the operator has to fix first.
      try (DataDirectoryLock probe = DataDirectoryLock.acquire(dataDirectory)) {
        throw new IOException(dataDirectory + " is not empty; restore only into a new or empty data directory");
      }
    }
    try (DataDirectoryLock lock = DataDirectoryLock.acquire(dataDirectory)) {
      if (!isEmptyBesidesLock(dataDirectory)) {
        throw new IOException(dataDirectory + " is not empty; restore only into a new or empty data directory");
      }
      try {
        long bytes = 0;
        List<Manifest.Entry> keyLast = new ArrayList<>(manifest.files());
        keyLast.sort((a, b) -> Boolean.compare(a.path().startsWith("identity/"), b.path().startsWith("identity/")));
        for (Manifest.Entry e : keyLast) {
          Path from = backup.resolve(e.path());
          Path to = dataDirectory.resolve(e.path());
          createDirectories(dataDirectory, to.getParent());
          byte[] sha;
          try {
            sha = copyFile(from, to, e);
          } catch (NoSuchFileException missing) {
            throw new IOException("the backup is damaged: " + e.path() + " is missing", missing);
          }
          if (!MessageDigest.isEqual(sha, e.sha256())) {
            throw new IOException("the backup is damaged: " + e.path() + " does not match its checksum");
          }
          bytes += e.size();
        }
        for (Path dir : directories(dataDirectory)) {
          syncDirectory(dir);
        }
        Optional<String> restored = fingerprint(dataDirectory.resolve(CERT));
        if (restored.isEmpty() || !restored.get().equals(manifest.fingerprint())) {
          throw new IOException("the backup is damaged: its key is not the one its manifest names");
        }
        // Opening replays what the checkpoint's logs hold and checks its files; no reserve file.
        MailboxStore.open(dataDirectory.resolve(STORE), DiskSpace.DEFAULT_RESERVE_BYTES, 0).close();
        // RocksDB made its new files (log, manifest) under the umask.
        PrivateFiles.restrictTree(dataDirectory);
        return new Summary(manifest.fingerprint(), manifest.files().size(), bytes);
      } catch (IOException | RuntimeException e) {
        removeAllBut(dataDirectory, DataDirectoryLock.FILE_NAME);
        throw e;
      }
    }
  }

  /** The base64url SHA-256 fingerprint of the server key in a certificate file, if there is one. */
  public static Optional<String> fingerprint(Path certificateFile) throws IOException {
    if (!Files.exists(certificateFile)) {
      return Optional.empty();
    }
    try (InputStream in = Files.newInputStream(certificateFile)) {
      X509Certificate cert = (X509Certificate) CertificateFactory.getInstance("X.509").generateCertificate(in);
      byte[] fp = ServerAddress.fingerprintOf(cert.getPublicKey());
      return Optional.of(java.util.Base64.getUrlEncoder().withoutPadding().encodeToString(fp));
    } catch (CertificateException e) {
      throw new IOException(certificateFile + " is not a certificate", e);
    }
  }

  /** The server certificate's place in a data directory. */
  public static Path certificate(Path dataDirectory) {
    return dataDirectory.resolve(CERT);
  }

  private static boolean isEmpty(Path dir) throws IOException {
    try (DirectoryStream<Path> s = Files.newDirectoryStream(dir)) {
      return !s.iterator().hasNext();
    }
  }

  private static boolean isEmptyBesidesLock(Path dir) throws IOException {
    if (!Files.isDirectory(dir, LinkOption.NOFOLLOW_LINKS)) {
      throw new IOException(dir + " exists and is not a directory");
    }
    try (DirectoryStream<Path> s = Files.newDirectoryStream(dir)) {
      for (Path p : s) {
        if (!p.getFileName().toString().equals(DataDirectoryLock.FILE_NAME)) {
          return false;
        }
      }
    }
    return true;
  }

  private static void removeAllBut(Path dir, String keep) {
    try (DirectoryStream<Path> s = Files.newDirectoryStream(dir)) {
      for (Path p : s) {
        if (!p.getFileName().toString().equals(keep)) {
          deleteTree(p);
        }
      }
    } catch (IOException e) {
      // Best effort: the error that brought us here is the one to report.
    }
  }

  /** Copies a file or a tree of regular files (no links, sockets or devices), owner-only. */
  private static void copyTree(Path from, Path to) throws IOException {
    if (Files.isRegularFile(from, LinkOption.NOFOLLOW_LINKS)) {
      copyFile(from, to, null);
      return;
    }
    if (!Files.isDirectory(from, LinkOption.NOFOLLOW_LINKS)) {
      return;
    }
    Files.walkFileTree(from, new SimpleFileVisitor<>() {
      @Override
      public FileVisitResult preVisitDirectory(Path dir, BasicFileAttributes attrs) throws IOException {
        Files.createDirectory(to.resolve(from.relativize(dir).toString()), OWNER_ONLY_DIR);
        return FileVisitResult.CONTINUE;
      }

      @Override
      public FileVisitResult visitFile(Path file, BasicFileAttributes attrs) throws IOException {
        if (attrs.isRegularFile()) {
          copyFile(file, to.resolve(from.relativize(file).toString()), null);
        }
        return FileVisitResult.CONTINUE;
      }
    });
  }

  /**
   * Copies one file into a new owner-only file (never over one), synced; returns the SHA-256 of
   * what was copied. With {@code expected}, stops as soon as the source is longer than it says.
   */
  private static byte[] copyFile(Path from, Path to, Manifest.Entry expected) throws IOException {
    MessageDigest sha = sha256();
    try (FileChannel in = FileChannel.open(from, StandardOpenOption.READ);
        FileChannel out = FileChannel.open(to, Set.of(StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE),
            OWNER_ONLY_FILE)) {
      ByteBuffer buf = ByteBuffer.allocate(1 << 16);
      long total = 0;
      while (in.read(buf) >= 0) {
        buf.flip();
        total += buf.remaining();
        if (expected != null && total > expected.size()) {
          throw new IOException("the backup is damaged: " + expected.path() + " is larger than its manifest says");
        }
        sha.update(buf.duplicate());
        while (buf.hasRemaining()) {
          out.write(buf);
        }
        buf.clear();
      }
      out.force(true);
    }
    return sha.digest();
  }

  private static void writeSynced(Path file, byte[] content) throws IOException {
    try (FileChannel out = FileChannel.open(file, Set.of(StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE),
        OWNER_ONLY_FILE)) {
      ByteBuffer buf = ByteBuffer.wrap(content);
      while (buf.hasRemaining()) {
        out.write(buf);
      }
      out.force(true);
    }
  }

  /** Creates the directories from {@code root} down to {@code dir}, each owner-only. */
  private static void createDirectories(Path root, Path dir) throws IOException {
    if (dir.equals(root) || Files.isDirectory(dir, LinkOption.NOFOLLOW_LINKS)) {
      return;
    }
    createDirectories(root, dir.getParent());
    try {
      Files.createDirectory(dir, OWNER_ONLY_DIR);
    } catch (FileAlreadyExistsException e) {
      if (!Files.isDirectory(dir, LinkOption.NOFOLLOW_LINKS)) {
        throw e;
      }
    }
  }

  private static List<Path> regularFiles(Path root) throws IOException {
    List<Path> files = new ArrayList<>();
    Files.walkFileTree(root, new SimpleFileVisitor<>() {
      @Override
      public FileVisitResult visitFile(Path file, BasicFileAttributes attrs) {
        if (attrs.isRegularFile()) {
          files.add(file);
        }
        return FileVisitResult.CONTINUE;
      }
    });
    files.sort(null);
    return files;
  }

  private static List<Path> directories(Path root) throws IOException {
    List<Path> dirs = new ArrayList<>();
    Files.walkFileTree(root, new SimpleFileVisitor<>() {
      @Override
      public FileVisitResult postVisitDirectory(Path dir, IOException e) {
        dirs.add(dir);
        return FileVisitResult.CONTINUE;
      }
    });
    return dirs;
  }

  /** Deletes a file or a directory and everything in it, if it exists. */
  public static void deleteTree(Path root) throws IOException {
    if (!Files.exists(root, LinkOption.NOFOLLOW_LINKS)) {
      return;
    }
    Files.walkFileTree(root, new SimpleFileVisitor<>() {
      @Override
      public FileVisitResult visitFile(Path file, BasicFileAttributes attrs) throws IOException {
        Files.deleteIfExists(file);
        return FileVisitResult.CONTINUE;
      }

      @Override
      public FileVisitResult postVisitDirectory(Path dir, IOException e) throws IOException {
        Files.deleteIfExists(dir);
        return FileVisitResult.CONTINUE;
      }
    });
  }

  private static void syncDirectory(Path dir) {
    try (FileChannel ch = FileChannel.open(dir, StandardOpenOption.READ)) {
      ch.force(true);
    } catch (IOException e) {
      // Not every platform can sync a directory; the files themselves are synced.
    }
  }

  private static void setMode(Path path, String mode) throws IOException {
    try {
      Files.setPosixFilePermissions(path, PosixFilePermissions.fromString(mode));
    } catch (UnsupportedOperationException e) {
      // No POSIX modes here.
    }
  }

  private static String unixPath(Path relative) {
    List<String> parts = new ArrayList<>();
    relative.forEach(p -> parts.add(p.toString()));
    return String.join("/", parts);
  }

  static MessageDigest sha256() {
    try {
      return MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("SHA-256 is missing from this JVM", e);
    }
  }
}
