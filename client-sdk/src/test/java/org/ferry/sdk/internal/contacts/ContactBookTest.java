package org.ferry.sdk.internal.contacts;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.text.Normalizer;
import java.util.Arrays;
import org.ferry.proto.local.v1.ContactRecord;
import org.ferry.sdk.FerryException;
import org.ferry.sdk.internal.store.LocalStore;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class ContactBookTest {
  private static final byte[] KEY = new byte[32];

  static {
    Arrays.fill(KEY, (byte) 3);
  }

  @TempDir Path dir;

  @ParameterizedTest
  @ValueSource(strings = {
      "प्रिया", // Devanagari: virama (Mn) and vowel sign i (Mc)
      "अनिल_कुमार",
      "தமிழ்செல்வி", // Tamil: pulli (Mn), vowel signs (Mc)
      "สมชาย", "ศิริพร", // Thai: sara i (Mn)
      "مُحَمَّد", // Arabic with harakat (Mn)
      "José", "Nguyễn", "Ђорђе", "李小龍", "Zoë.2",
  })
  void namesInEveryScriptWithTheirMarksAreAccepted(String label) {
    try (LocalStore store = LocalStore.open(dir, KEY); LocalStore.Txn txn = store.begin()) {
      assertDoesNotThrow(() -> ContactBook.checkNewLabel(txn, label));
    }
  }

  @ParameterizedTest
  @ValueSource(strings = {"-rf", "--name", "", "a b", "a/b", "\u0301e", "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", "a\u202Eb"})
  void labelsThatLookLikeOptionsOrHoldOtherCharactersAreRefused(String label) {
    try (LocalStore store = LocalStore.open(dir, KEY); LocalStore.Txn txn = store.begin()) {
      FerryException e = assertThrows(FerryException.class, () -> ContactBook.checkNewLabel(txn, label));
      assertEquals(FerryException.Reason.INVALID_LABEL, e.reason());
    }
  }

  @Test
  void aDecomposedLabelIsTheSameContactAsTheComposedOne() {
    String composed = "Jos\u00e9";
    String decomposed = "Jose\u0301";
    assertTrue(!composed.equals(decomposed) && Normalizer.normalize(decomposed, Normalizer.Form.NFC).equals(composed));
    try (LocalStore store = LocalStore.open(dir, KEY)) {
      try (LocalStore.Txn txn = store.begin()) {
        String stored = ContactBook.checkNewLabel(txn, decomposed);
        assertEquals(composed, stored, "labels are kept in NFC");
        ContactBook.put(txn, ContactRecord.newBuilder().setId("c1").setLabel(stored).build());
        txn.commit();
      }
      try (LocalStore.Txn txn = store.begin()) {
        assertEquals("c1", ContactBook.require(txn, composed).getId());
        assertEquals("c1", ContactBook.require(txn, decomposed).getId());
        FerryException taken = assertThrows(FerryException.class, () -> ContactBook.checkNewLabel(txn, composed));
        assertTrue(taken.getMessage().contains("exists already"), taken.getMessage());
      }
    }
  }
}
