package org.ferry.sdk.internal.signal;

import java.util.Optional;
import org.signal.libsignal.protocol.IdentityKey;
import org.signal.libsignal.protocol.fingerprint.NumericFingerprintGenerator;

/**
 * Safety numbers as Signal shows them: libsignal's {@link NumericFingerprintGenerator}, version 2,
 * 5200 iterations, with each side's serialized identity key as its stable identifier. 60 digits,
 * the same on both sides.
 */
public final class SafetyNumbers {
  /** Digits in a safety number. */
  public static final int DIGITS = 60;
  private static final int ITERATIONS = 5200;
  private static final int VERSION = 2;

  private SafetyNumbers() {}

  /** The safety number of two identity keys, in 12 groups of five digits separated by spaces. */
  public static String of(IdentityKey local, IdentityKey remote) {
    String digits = new NumericFingerprintGenerator(ITERATIONS)
        .createFor(VERSION, local.serialize(), local, remote.serialize(), remote)
        .getDisplayableFingerprint()
        .getDisplayText();
    StringBuilder grouped = new StringBuilder();
    for (int i = 0; i < digits.length(); i += 5) {
      if (i > 0) {
        grouped.append(' ');
      }
      grouped.append(digits, i, Math.min(i + 5, digits.length()));
    }
    return grouped.toString();
  }

  /**
   * The 60 ASCII digits of a safety number as a person may type or paste it: whitespace of any
   * kind (spaces, no-break spaces, line breaks) is ignored, and decimal digits of any script
   * count as their value. Empty if anything else is in it, or not exactly 60 digits.
   */
  public static Optional<String> normalize(String given) {
    StringBuilder digits = new StringBuilder(DIGITS);
    for (int i = 0; i < given.length(); i += Character.charCount(given.codePointAt(i))) {
      int cp = given.codePointAt(i);
      if (Character.isWhitespace(cp) || Character.isSpaceChar(cp)) {
        continue;
      }
      int value = Character.getType(cp) == Character.DECIMAL_DIGIT_NUMBER ? Character.digit(cp, 10) : -1;
      if (value < 0 || digits.length() == DIGITS) {
        return Optional.empty();
      }
      digits.append((char) ('0' + value));
    }
    return digits.length() == DIGITS ? Optional.of(digits.toString()) : Optional.empty();
  }

  /** Whether {@code normalized} (as from {@link #normalize}) is the safety number of the two keys. */
  public static boolean matches(String normalized, IdentityKey local, IdentityKey remote) {
    return of(local, remote).replace(" ", "").equals(normalized);
  }
}
