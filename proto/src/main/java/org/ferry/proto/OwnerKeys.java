package org.ferry.proto;

import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.PrivateKey;
import java.security.PublicKey;
import java.security.Signature;
import java.security.interfaces.EdECPublicKey;
import java.security.spec.EdECPoint;
import java.security.spec.EdECPublicKeySpec;
import java.security.spec.NamedParameterSpec;
import java.security.spec.PKCS8EncodedKeySpec;

/**
 * Mailbox owner keys (Ed25519) and the statements they sign, as the wire contract defines them.
 *
 * <p>Public keys travel in RFC 8032 encoding (32 bytes). A signed statement is
 * {@code context || 0x00 || parts...}, with a context per purpose, so a signature made for one
 * purpose can never be replayed for another.
 */
public final class OwnerKeys {
  /** Receive stream subscription: parts are the challenge nonce and the mailbox id. */
  public static final String RECEIVE_CONTEXT = "ferry.v1.receive";
  /**
   * Storing an invitation: parts are the mailbox id, the fetch token hash, SHA-256 of the blob
   * and the ttl in seconds (4 bytes, big-endian).
   */
  public static final String PUT_INVITATION_CONTEXT = "ferry.v1.put-invitation";
  /** Deleting a mailbox for good: the one part is the mailbox id. */
  public static final String DELETE_MAILBOX_CONTEXT = "ferry.v1.delete-mailbox";

  private static final int KEY_LENGTH = 32;
  private static final int SIGNATURE_LENGTH = 64;

  private OwnerKeys() {}

  public static KeyPair generate() {
    try {
      return KeyPairGenerator.getInstance("Ed25519").generateKeyPair();
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException("Ed25519 is missing from this JVM", e);
    }
  }

  /** The 32-byte RFC 8032 encoding of an Ed25519 public key: little-endian y, x's sign on top. */
  public static byte[] encode(PublicKey key) {
    EdECPoint point = ((EdECPublicKey) key).getPoint();
    byte[] y = point.getY().toByteArray();
    byte[] le = new byte[KEY_LENGTH];
    for (int i = 0; i < KEY_LENGTH && i < y.length; i++) {
      le[i] = y[y.length - 1 - i];
    }
    if (point.isXOdd()) {
      le[KEY_LENGTH - 1] |= (byte) 0x80;
    }
    return le;
  }

  /** Decodes {@link #encode}'s output; throws {@link IllegalArgumentException} if malformed. */
  public static PublicKey decode(byte[] raw) {
    if (raw.length != KEY_LENGTH) {
      throw new IllegalArgumentException("Ed25519 public key must be 32 bytes: " + raw.length);
    }
    byte[] le = raw.clone();
    boolean xOdd = (le[KEY_LENGTH - 1] & 0x80) != 0;
    le[KEY_LENGTH - 1] &= 0x7f;
    byte[] be = new byte[KEY_LENGTH];
    for (int i = 0; i < KEY_LENGTH; i++) {
      be[i] = le[KEY_LENGTH - 1 - i];
    }
    try {
      return KeyFactory.getInstance("Ed25519")
          .generatePublic(new EdECPublicKeySpec(NamedParameterSpec.ED25519, new EdECPoint(xOdd, new BigInteger(1, be))));
    } catch (GeneralSecurityException e) {
      throw new IllegalArgumentException("not an Ed25519 public key", e);
    }
  }

  /** Whether {@code raw} decodes to an Ed25519 public key. */
  public static boolean isValid(byte[] raw) {
    try {
      decode(raw);
      return true;
    } catch (IllegalArgumentException e) {
      return false;
    }
  }

  public static PrivateKey privateKey(byte[] pkcs8) {
    try {
      return KeyFactory.getInstance("Ed25519").generatePrivate(new PKCS8EncodedKeySpec(pkcs8));
    } catch (GeneralSecurityException e) {
      throw new IllegalArgumentException("not an Ed25519 private key", e);
    }
  }

  /** Signs {@code context || 0x00 || parts}. */
  public static byte[] sign(PrivateKey key, String context, byte[]... parts) {
    try {
      Signature s = Signature.getInstance("Ed25519");
      s.initSign(key);
      update(s, context, parts);
      return s.sign();
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException("Ed25519 signing failed", e);
    }
  }

  /** Whether {@code signature} is {@code rawKey}'s signature over the statement. */
  public static boolean verify(byte[] rawKey, byte[] signature, String context, byte[]... parts) {
    if (signature.length != SIGNATURE_LENGTH || !isValid(rawKey)) {
      return false;
    }
    try {
      Signature s = Signature.getInstance("Ed25519");
      s.initVerify(decode(rawKey));
      update(s, context, parts);
      return s.verify(signature);
    } catch (GeneralSecurityException e) {
      return false;
    }
  }

  private static void update(Signature s, String context, byte[]... parts) throws GeneralSecurityException {
    s.update(context.getBytes(StandardCharsets.US_ASCII));
    s.update((byte) 0);
    for (byte[] p : parts) {
      s.update(p);
    }
  }
}
