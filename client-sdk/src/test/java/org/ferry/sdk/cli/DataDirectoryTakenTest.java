package org.ferry.sdk.cli;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.ferry.datadir.DataDirectoryLock;
import org.ferry.sdk.FerryClient;
import org.ferry.sdk.FerryException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** One process at a time in a client's data directory: a CLI command queues, the SDK refuses. */
class DataDirectoryTakenTest {
  @TempDir Path dir;

  @Test
  void aCommandWaitsForTheDirectoryAndRunsOnceItIsFree() throws Exception {
    Path data = dir.resolve("client");
    Files.createDirectories(data);
    CliStorageKey.create(data, Optional.empty());
    StringWriter err = new StringWriter();
    StringWriter out = new StringWriter();
    CompletableFuture<Integer> command;
    try (DataDirectoryLock held = DataDirectoryLock.acquire(data)) {
      command = CompletableFuture.supplyAsync(() -> ClientMain.run(
          new String[] {"--data", data.toString(), "contacts"},
          new PrintWriter(out, true), new PrintWriter(err, true)));
      await().atMost(Duration.ofSeconds(10)).until(() -> err.toString().contains("waiting for " + data));
      assertFalse(command.isDone(), "the command ran while another process held the directory");
    }
    command.get(20, TimeUnit.SECONDS);
    // It got in and opened the store, which holds no identity yet (no server to init against).
    assertFalse(err.toString().contains("in use"), err.toString());
    assertTrue(err.toString().contains("not initialised"), err.toString());
  }

  @Test
  void anSdkClientRefusesADirectoryInUseNamingIt() throws Exception {
    Path data = dir.resolve("app");
    try (DataDirectoryLock held = DataDirectoryLock.acquire(data)) {
      FerryException e = assertThrows(FerryException.class,
          () -> FerryClient.builder().dataDirectory(data).storageKey(new byte[32]).build());
      assertEquals(FerryException.Reason.STORAGE, e.reason());
      assertTrue(e.getMessage().contains(data.toString()) && e.getMessage().contains("in use"), e.getMessage());
    }
    FerryClient.builder().dataDirectory(data).storageKey(new byte[32]).build().close();
  }
}
