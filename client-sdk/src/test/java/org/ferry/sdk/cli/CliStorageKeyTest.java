package org.ferry.sdk.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;
import org.ferry.sdk.FerryClient;
import org.ferry.sdk.FerryException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class CliStorageKeyTest {
  @TempDir Path dir;

  private void openWith(byte[] key) {
    FerryClient.builder().dataDirectory(dir).storageKey(key).build().close();
  }

  @Test
  void aPassphraseGivenForAStoreWithAKeyFileIsReportedNotSilentlyIgnored() throws Exception {
    CliStorageKey.create(dir, Optional.empty());
    assertTrue(CliStorageKey.ignoredPassphraseNote(dir, Optional.empty()).isEmpty());
    String note = CliStorageKey.ignoredPassphraseNote(dir, Optional.of("secret words")).orElseThrow();
    assertTrue(note.contains("FERRY_PASSPHRASE") && note.contains("not used") && note.contains("passphrase set"), note);
  }

  @Test
  void aStoreSwitchesFromItsKeyFileToAPassphraseAndBack() throws Exception {
    byte[] key = CliStorageKey.create(dir, Optional.empty());
    openWith(key);

    CliStorageKey.protectWithPassphrase(dir, key, "correct horse");
    assertFalse(Files.exists(dir.resolve("store.key")), "the key file is gone");
    FerryException missing = assertThrows(FerryException.class, () -> CliStorageKey.load(dir, Optional.empty()));
    assertTrue(missing.getMessage().contains("FERRY_PASSPHRASE"), missing.getMessage());
    FerryException wrong = assertThrows(FerryException.class, () -> CliStorageKey.load(dir, Optional.of("wrong horse")));
    assertEquals(FerryException.Reason.STORAGE, wrong.reason());
    assertArrayEquals(key, CliStorageKey.load(dir, Optional.of("correct horse")));
    assertTrue(CliStorageKey.ignoredPassphraseNote(dir, Optional.of("correct horse")).isEmpty());
    openWith(CliStorageKey.load(dir, Optional.of("correct horse")));

    CliStorageKey.keepInKeyFile(dir, key);
    assertArrayEquals(key, CliStorageKey.load(dir, Optional.empty()));
    openWith(CliStorageKey.load(dir, Optional.empty()));
  }

  @Test
  void aStoreMadeWithAPassphraseCanMoveToAKeyFile() throws Exception {
    byte[] key = CliStorageKey.create(dir, Optional.of("at init"));
    openWith(key);
    CliStorageKey.keepInKeyFile(dir, key);
    assertFalse(Files.exists(dir.resolve("store.salt")));
    openWith(CliStorageKey.load(dir, Optional.empty()));
  }
}
