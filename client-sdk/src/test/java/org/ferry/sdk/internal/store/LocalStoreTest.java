package org.ferry.sdk.internal.store;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import org.ferry.sdk.FerryException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class LocalStoreTest {
  private static final byte[] KEY = new byte[32];
  private static final byte[] OTHER_KEY = new byte[32];

  static {
    Arrays.fill(KEY, (byte) 1);
    Arrays.fill(OTHER_KEY, (byte) 2);
  }

  @TempDir Path dir;

  @Test
  void committedChangesSurviveReopenAndUncommittedOnesVanish() {
    try (LocalStore store = LocalStore.open(dir, KEY)) {
      try (LocalStore.Txn txn = store.begin()) {
        txn.put("a/1", "one".getBytes(UTF_8));
        txn.put("a/2", "two".getBytes(UTF_8));
        assertArrayEquals("one".getBytes(UTF_8), txn.get("a/1").orElseThrow(), "reads see own writes");
        assertTrue(store.get("a/1").isEmpty(), "others do not see uncommitted writes");
        txn.commit();
      }
      try (LocalStore.Txn txn = store.begin()) {
        txn.put("a/3", "three".getBytes(UTF_8));
        txn.delete("a/1");
        // closed without commit
      }
    }
    try (LocalStore store = LocalStore.open(dir, KEY)) {
      assertEquals(List.of("a/1", "a/2"), List.copyOf(store.scan("a/").keySet()));
      assertArrayEquals("two".getBytes(UTF_8), store.get("a/2").orElseThrow());
    }
  }

  @Test
  void scanInsideATransactionSeesItsPendingPutsAndDeletes() {
    try (LocalStore store = LocalStore.open(dir, KEY); LocalStore.Txn txn = store.begin()) {
      txn.put("p/1", new byte[] {1});
      txn.commit();
      try (LocalStore.Txn next = store.begin()) {
        next.delete("p/1");
        next.put("p/2", new byte[] {2});
        assertEquals(List.of("p/2"), List.copyOf(next.scan("p/").keySet()));
      }
    }
  }

  @Test
  void theWrongKeyCannotOpenTheStore() {
    LocalStore.open(dir, KEY).close();
    FerryException e = assertThrows(FerryException.class, () -> LocalStore.open(dir, OTHER_KEY));
    assertEquals(FerryException.Reason.STORAGE, e.reason());
  }

  @Test
  void aSecondOpenOfTheSameDirectoryIsRefusedClearly() {
    try (LocalStore store = LocalStore.open(dir, KEY)) {
      FerryException e = assertThrows(FerryException.class, () -> LocalStore.open(dir, KEY));
      assertTrue(e.getMessage().contains("in use"), e.getMessage());
      assertTrue(store.get("meta/key-check").isPresent(), "the first opener keeps working");
    }
  }

  @Test
  void valuesNeverReachTheDiskInTheClear() throws Exception {
    byte[] secret = "attack at dawn, meet at the bridge".getBytes(UTF_8);
    try (LocalStore store = LocalStore.open(dir, KEY); LocalStore.Txn txn = store.begin()) {
      txn.put("message/1", secret);
      txn.commit();
    }
    try (var files = Files.walk(dir)) {
      for (Path f : files.filter(Files::isRegularFile).toList()) {
        assertFalse(contains(Files.readAllBytes(f), secret), "plaintext found in " + f);
      }
    }
    // The scan itself must be able to see what is on disk: the record's name is stored as is.
    boolean nameFound = false;
    try (var files = Files.walk(dir)) {
      for (Path f : files.filter(Files::isRegularFile).toList()) {
        nameFound |= contains(Files.readAllBytes(f), "message/1".getBytes(UTF_8));
      }
    }
    assertTrue(nameFound, "the scan should find the record name, or it proves nothing");
  }

  static boolean contains(byte[] haystack, byte[] needle) {
    outer:
    for (int i = 0; i + needle.length <= haystack.length; i++) {
      for (int j = 0; j < needle.length; j++) {
        if (haystack[i + j] != needle[j]) {
          continue outer;
        }
      }
      return true;
    }
    return false;
  }

  @Test
  void aLongListIsReadAPageAtATimeAndCountedAndItsLastNameFound() {
    try (LocalStore store = LocalStore.open(dir, KEY)) {
      try (LocalStore.Txn txn = store.begin()) {
        for (int i = 0; i < 10; i++) {
          txn.put("q/" + i, new byte[] {(byte) i});
        }
        txn.put("qz", new byte[1]);
        txn.put("r/0", new byte[1]);
        txn.commit();
      }
      assertEquals(List.of("q/0", "q/1", "q/2"), List.copyOf(store.scan("q/", "q/", 3).keySet()));
      assertEquals(List.of("q/3", "q/4", "q/5"), List.copyOf(store.scan("q/", "q/2", 3).keySet()));
      assertEquals(List.of("q/9"), List.copyOf(store.scan("q/", "q/8", 3).keySet()));
      assertEquals(List.of(), List.copyOf(store.scan("q/", "q/9", 3).keySet()));
      assertEquals(10, store.count("q/"));
      assertEquals("q/9", store.lastName("q/").orElseThrow());
      assertTrue(store.lastName("p/").isEmpty());
    }
  }

  @Test
  void aClosedStoreRefusesUseAndATransactionWaitsForAnotherThreads() throws Exception {
    LocalStore store = LocalStore.open(dir, KEY);
    LocalStore.Txn held = store.begin();
    java.util.concurrent.CompletableFuture<Void> second = java.util.concurrent.CompletableFuture.runAsync(() -> {
      try (LocalStore.Txn txn = store.begin()) {
        txn.put("k", txn.get("k").map(v -> new byte[] {(byte) (v[0] + 1)}).orElse(new byte[] {1}));
        txn.commit();
      }
    });
    held.put("k", new byte[] {10});
    held.commit();
    assertFalse(second.isDone(), "the second transaction waits while the first is open");
    held.close();
    second.get(30, java.util.concurrent.TimeUnit.SECONDS);
    assertEquals(11, store.get("k").orElseThrow()[0], "the second read the first's write: no lost update");
    store.close();
    store.close();
    FerryException closed = assertThrows(FerryException.class, () -> store.get("k"));
    assertEquals(FerryException.Reason.CLOSED, closed.reason());
  }
}
