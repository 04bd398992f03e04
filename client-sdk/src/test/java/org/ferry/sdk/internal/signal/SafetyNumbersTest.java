package org.ferry.sdk.internal.signal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.signal.libsignal.protocol.IdentityKey;
import org.signal.libsignal.protocol.IdentityKeyPair;

/** Safety numbers as people type or paste them. */
class SafetyNumbersTest {
  private final IdentityKey alice = IdentityKeyPair.generate().getPublicKey();
  private final IdentityKey bob = IdentityKeyPair.generate().getPublicKey();

  @Test
  void spacesLineBreaksAndOtherScriptsDigitsAreReadAsTheNumber() {
    String shown = SafetyNumbers.of(alice, bob);
    String digits = shown.replace(" ", "");
    for (String typed : new String[] {shown, digits, shown.replace(" ", "\n"), shown.replace(" ", "\u00a0"),
        "  " + shown + "\r\n", toArabicIndic(shown)}) {
      assertEquals(Optional.of(digits), SafetyNumbers.normalize(typed), typed);
      assertTrue(SafetyNumbers.matches(SafetyNumbers.normalize(typed).orElseThrow(), bob, alice), typed);
    }
  }

  @Test
  void anythingButSixtyDigitsIsNoSafetyNumber() {
    String digits = SafetyNumbers.of(alice, bob).replace(" ", "");
    for (String typed : new String[] {"", " ", digits.substring(1), digits + "1", digits.replaceFirst("\\d", "a"),
        digits.substring(0, 30) + "-" + digits.substring(30), digits.replaceFirst("\\d", "\u00bd"),
        digits.substring(0, 59) + "\u2075"}) {
      assertEquals(Optional.empty(), SafetyNumbers.normalize(typed), typed);
    }
  }

  private static String toArabicIndic(String s) {
    StringBuilder b = new StringBuilder();
    s.chars().forEach(c -> b.append(c >= '0' && c <= '9' ? (char) ('\u0660' + c - '0') : (char) c));
    return b.toString();
  }
}
