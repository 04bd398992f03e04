package org.ferry.sdk;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** What the client leaves on disk: owner-only, and not more of it with every run. */
class LocalFilesTest {
  private static final byte[] KEY = new byte[32];

  static {
    Arrays.fill(KEY, (byte) 7);
  }

  @TempDir Path dir;

  private FerryClient open(Path data) {
    return FerryClient.builder().dataDirectory(data).storageKey(KEY).build();
  }

  /** Everything under {@code root} that someone other than the owner could read or enter. */
  private static List<String> reachableByOthers(Path root) throws Exception {
    List<String> found = new ArrayList<>();
    try (Stream<Path> paths = Files.walk(root)) {
      for (Path p : paths.toList()) {
        Set<PosixFilePermission> mode = Files.getPosixFilePermissions(p);
        String expected = Files.isDirectory(p) ? "rwx------" : "rw-------";
        if (!PosixFilePermissions.toString(mode).equals(expected)) {
          found.add(root.relativize(p) + " " + PosixFilePermissions.toString(mode));
        }
      }
    }
    return found;
  }

  @Test
  void theDataDirectoryAndEveryFileInItAreOwnerOnlyWhateverTheUmask() throws Exception {
    // As an older version, or a lax umask (022, 002), left them.
    Path data = dir.resolve("client");
    Files.createDirectories(data.resolve("store"));
    Files.setPosixFilePermissions(data, PosixFilePermissions.fromString("rwxrwxr-x"));
    Files.setPosixFilePermissions(data.resolve("store"), PosixFilePermissions.fromString("rwxr-xr-x"));
    try (FerryClient c = open(data)) {
      assertEquals("rwx------", PosixFilePermissions.toString(Files.getPosixFilePermissions(data)));
      assertEquals("rwx------", PosixFilePermissions.toString(Files.getPosixFilePermissions(data.resolve("store"))),
          "files RocksDB makes while open are out of reach through their directory");
    }
    assertEquals(List.of(), reachableByOthers(data));
    Path leftover = data.resolve("store").resolve("LOG.old.1");
    Files.writeString(leftover, "x");
    Files.setPosixFilePermissions(leftover, PosixFilePermissions.fromString("rw-r--r--"));
    open(data).close();
    assertEquals(List.of(), reachableByOthers(data));
  }

  @Test
  void openingTheStoreAgainAndAgainKeepsAFewInfoLogs() throws Exception {
    Path data = dir.resolve("client");
    for (int i = 0; i < 12; i++) {
      open(data).close();
    }
    try (Stream<Path> files = Files.list(data.resolve("store"))) {
      List<String> logs = files.map(p -> p.getFileName().toString()).filter(n -> n.startsWith("LOG")).toList();
      assertTrue(logs.size() <= 3, "info logs kept: " + logs);
    }
  }
}
