package org.ferry.datadir;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** One holder per data directory; owner-only files that are created whole and never replaced. */
class DataDirectoryLockTest {
  @TempDir Path tmp;

  @Test
  void aMissingDirectoryIsCreatedOwnerOnlyWithNothingButTheLockInIt() throws Exception {
    Path dir = tmp.resolve("a/b");
    try (DataDirectoryLock lock = DataDirectoryLock.acquire(dir)) {
      assertEquals("rwx------", PosixFilePermissions.toString(Files.getPosixFilePermissions(dir)));
      try (var files = Files.list(dir)) {
        assertEquals(List.of(dir.resolve(DataDirectoryLock.FILE_NAME)), files.toList());
      }
      assertEquals("rw-------",
          PosixFilePermissions.toString(Files.getPosixFilePermissions(dir.resolve(DataDirectoryLock.FILE_NAME))));
    }
  }

  @Test
  void aSecondHolderIsRefusedInOneLineNamingTheDirectoryUntilTheFirstLetsGo() throws Exception {
    Path dir = tmp.resolve("data");
    DataDirectoryLock first = DataDirectoryLock.acquire(dir);
    DataDirectoryInUseException e =
        assertThrows(DataDirectoryInUseException.class, () -> DataDirectoryLock.acquire(dir));
    assertTrue(e.getMessage().contains(dir.toString()) && e.getMessage().contains("in use"), e.getMessage());
    assertTrue(e.getMessage().contains("pid " + ProcessHandle.current().pid()), e.getMessage());
    assertEquals(1, e.getMessage().lines().count());
    first.close();
    DataDirectoryLock.acquire(dir).close();
  }

  @Test
  void aWaitingHolderGetsTheDirectoryOnceTheFirstLetsGo() throws Exception {
    Path dir = tmp.resolve("data");
    DataDirectoryLock first = DataDirectoryLock.acquire(dir);
    CountDownLatch waiting = new CountDownLatch(1);
    CompletableFuture<DataDirectoryLock> second = CompletableFuture.supplyAsync(() -> {
      try {
        return DataDirectoryLock.acquire(dir, Duration.ofSeconds(30), waiting::countDown);
      } catch (Exception e) {
        throw new IllegalStateException(e);
      }
    });
    assertTrue(waiting.await(10, TimeUnit.SECONDS), "the second must find the lock taken and wait");
    first.close();
    second.get(10, TimeUnit.SECONDS).close();
  }

  @Test
  void aWaitingHolderGivesUpAfterItsPatience() throws Exception {
    Path dir = tmp.resolve("data");
    try (DataDirectoryLock first = DataDirectoryLock.acquire(dir)) {
      assertThrows(DataDirectoryInUseException.class,
          () -> DataDirectoryLock.acquire(dir, Duration.ofMillis(100), () -> { }));
    }
  }

  @Test
  void createNewNeverReplacesAFileAndWritesOwnerOnly() throws Exception {
    Path file = tmp.resolve("key.pem");
    PrivateFiles.createNew(file, "first\n");
    assertThrows(FileAlreadyExistsException.class, () -> PrivateFiles.createNew(file, "second\n"));
    assertArrayEquals("first\n".getBytes(StandardCharsets.US_ASCII), Files.readAllBytes(file));
    assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(file)));
    try (var files = Files.list(tmp)) {
      assertEquals(1, files.count(), "no temporary file is left behind");
    }
  }

  @Test
  void aDirectoryOfOursThatOthersCouldChangeIsMadeOwnerOnly() throws Exception {
    Path dir = Files.createDirectories(tmp.resolve("shared"));
    Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxrwxrwx"));
    try (DataDirectoryLock lock = DataDirectoryLock.acquire(dir)) {
      assertEquals("rwx------", PosixFilePermissions.toString(Files.getPosixFilePermissions(dir)));
    }
  }

  @Test
  void aDirectoryOfAnotherUserIsRefusedNamingTheOwner() throws Exception {
    org.junit.jupiter.api.Assumptions.assumeTrue("root".equals(System.getProperty("user.name")),
        "needs root to give a directory to another user");
    Path dir = Files.createDirectories(tmp.resolve("theirs"));
    Files.setOwner(dir, dir.getFileSystem().getUserPrincipalLookupService().lookupPrincipalByName("nobody"));
    java.io.IOException e = assertThrows(java.io.IOException.class, () -> DataDirectoryLock.acquire(dir));
    assertEquals("data directory " + dir + " belongs to nobody, not to root: run Ferry as nobody, or give it"
        + " a directory of its own", e.getMessage());
  }
}
