package org.ferry.server.internal.mailbox;

import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.PublicKey;
import java.security.Signature;
import java.security.spec.EdECPoint;
import java.security.spec.EdECPublicKeySpec;
import java.security.spec.NamedParameterSpec;
import org.ferry.server.internal.util.Bytes;

/**
 * Verifies Ed25519 signatures by mailbox owner keys. Each signed statement starts with a
 * context label and a zero byte, so that a signature made for one purpose can never be
 * replayed for another.
 */
public final class OwnerSignatures {
  public static final String RECEIVE_CONTEXT = "ferry.v1.receive";
  public static final String PUT_INVITATION_CONTEXT = "ferry.v1.put-invitation";

  private OwnerSignatures() {}

  /** The bytes signed for a statement: context || 0x00 || parts. */
  public static byte[] statement(String context, byte[]... parts) {
    byte[] label = context.getBytes(StandardCharsets.US_ASCII);
    byte[][] all = new byte[parts.length + 2][];
    all[0] = label;
    all[1] = new byte[] {0};
    System.arraycopy(parts, 0, all, 2, parts.length);
    return Bytes.concat(all);
  }

  /** Whether {@code signature} is {@code ownerKey}'s signature over {@code message}. */
  public static boolean verify(byte[] ownerKey, byte[] message, byte[] signature) {
    if (ownerKey.length != 32 || signature.length != 64) {
      return false;
    }
    try {
      Signature verifier = Signature.getInstance("Ed25519");
      verifier.initVerify(decodeEd25519(ownerKey));
      verifier.update(message);
      return verifier.verify(signature);
    } catch (GeneralSecurityException | IllegalArgumentException e) {
      return false;
    }
  }

  /** Whether {@code key} is a well-formed Ed25519 public key. */
  public static boolean isValidKey(byte[] key) {
    if (key.length != 32) {
      return false;
    }
    try {
      decodeEd25519(key);
      return true;
    } catch (GeneralSecurityException | IllegalArgumentException e) {
      return false;
    }
  }

  /** Decodes an RFC 8032 public key: little-endian y with the sign of x in the top bit. */
  private static PublicKey decodeEd25519(byte[] raw) throws GeneralSecurityException {
    byte[] le = raw.clone();
    boolean xOdd = (le[31] & 0x80) != 0;
    le[31] &= 0x7f;
    byte[] be = new byte[32];
    for (int i = 0; i < 32; i++) {
      be[i] = le[31 - i];
    }
    EdECPoint point = new EdECPoint(xOdd, new BigInteger(1, be));
    return KeyFactory.getInstance("Ed25519")
        .generatePublic(new EdECPublicKeySpec(NamedParameterSpec.ED25519, point));
  }
}
