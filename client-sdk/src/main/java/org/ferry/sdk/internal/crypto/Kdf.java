package org.ferry.sdk.internal.crypto;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import org.signal.libsignal.protocol.kdf.HKDF;

/** Key derivation and hashing, each use with its own label. */
public final class Kdf {
  private Kdf() {}

  /** HKDF-SHA256 of {@code secret} with {@code label} as info, no salt. */
  public static byte[] derive(byte[] secret, String label, int length) {
    return HKDF.deriveSecrets(secret, label.getBytes(StandardCharsets.US_ASCII), length);
  }

  public static byte[] sha256(byte[] data) {
    try {
      return MessageDigest.getInstance("SHA-256").digest(data);
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("SHA-256 is missing from this JVM", e);
    }
  }
}
