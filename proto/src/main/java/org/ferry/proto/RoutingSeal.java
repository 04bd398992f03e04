package org.ferry.proto;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.security.SecureRandom;
import java.util.Arrays;
import javax.crypto.AEADBadTagException;
import javax.crypto.Cipher;
import javax.crypto.spec.GCMParameterSpec;
import javax.crypto.spec.SecretKeySpec;
import org.bouncycastle.crypto.agreement.X25519Agreement;
import org.bouncycastle.crypto.digests.SHA256Digest;
import org.bouncycastle.crypto.generators.HKDFBytesGenerator;
import org.bouncycastle.crypto.params.HKDFParameters;
import org.bouncycastle.crypto.params.X25519PrivateKeyParameters;
import org.bouncycastle.crypto.params.X25519PublicKeyParameters;

/**
 * The sealed routing part of a forwarded item: a serialized {@code ferry.v1.Routing} (which
 * mailbox, with which capability) that only the destination server can open, so that the home
 * server learns only which server an item is for.
 *
 * <p>An ECIES-style sealed box: a fresh X25519 key pair per seal (RFC 7748), its shared secret
 * with the destination's routing key run through HKDF-SHA256 (RFC 5869; salt: the ephemeral
 * public key then the routing key, info {@value #INFO}) into an AES-256-GCM key (NIST SP 800-38D,
 * all-zero 96-bit nonce: every key is used once). The plaintext is padded to {@value
 * #PADDED_LENGTH} bytes (a 2-byte big-endian length, the bytes, zeros), so every seal is exactly
 * {@value #SEALED_LENGTH} bytes: 32 of ephemeral key, 192 of ciphertext, 16 of tag. The
 * associated data binds the seal to its routing key id and to the item it travels with (item id
 * and body hash), so it cannot be moved to another item.
 */
public final class RoutingSeal {
  /** Bytes of a routing public or private key (X25519). */
  public static final int KEY_LENGTH = 32;
  /** Bytes of padded plaintext. */
  public static final int PADDED_LENGTH = 192;
  /** Bytes of every sealed routing part. */
  public static final int SEALED_LENGTH = KEY_LENGTH + PADDED_LENGTH + 16;
  /** HKDF info. */
  public static final String INFO = "ferry.v1.routing-seal";
  private static final byte[] AAD_CONTEXT = "ferry.v1.routing".getBytes(StandardCharsets.US_ASCII);

  private RoutingSeal() {}

  /** A routing key pair: 32-byte X25519 private and public keys. */
  public record KeyPair(byte[] privateKey, byte[] publicKey) {}

  /** Makes a routing key pair. */
  public static KeyPair generate(SecureRandom random) {
    X25519PrivateKeyParameters priv = new X25519PrivateKeyParameters(random);
    return new KeyPair(priv.getEncoded(), priv.generatePublicKey().getEncoded());
  }

  /** The public half of a 32-byte private routing key. */
  public static byte[] publicKeyOf(byte[] privateKey) {
    return new X25519PrivateKeyParameters(privateKey, 0).generatePublicKey().getEncoded();
  }

  /**
   * The binding of a send's seal: its 16-byte item id and the SHA-256 of its envelope body.
   */
  public static byte[] sendBinding(byte[] itemId, byte[] body) {
    return ByteBuffer.allocate(itemId.length + 32).put(itemId).put(sha256(body)).array();
  }

  /**
   * Seals {@code plaintext} (at most {@code PADDED_LENGTH - 2} bytes) to {@code routingKey}.
   *
   * @param binding bytes both ends know (see {@link #sendBinding}; a take's request id)
   * @throws IllegalArgumentException if the plaintext is too long or the key is not 32 bytes
   */
  public static byte[] seal(
      byte[] routingKey, int keyId, byte[] plaintext, byte[] binding, SecureRandom random) {
    if (plaintext.length > PADDED_LENGTH - 2) {
      throw new IllegalArgumentException("routing part too long: " + plaintext.length + " bytes");
    }
    if (routingKey.length != KEY_LENGTH) {
      throw new IllegalArgumentException("routing key must be 32 bytes: " + routingKey.length);
    }
    X25519PrivateKeyParameters ephemeral = new X25519PrivateKeyParameters(random);
    byte[] ephemeralPublic = ephemeral.generatePublicKey().getEncoded();
    byte[] key = derive(ephemeral, new X25519PublicKeyParameters(routingKey, 0), ephemeralPublic, routingKey);
    byte[] padded = ByteBuffer.allocate(PADDED_LENGTH).putShort((short) plaintext.length).put(plaintext).array();
    try {
      byte[] ciphertext = cipher(Cipher.ENCRYPT_MODE, key, keyId, binding).doFinal(padded);
      return ByteBuffer.allocate(SEALED_LENGTH).put(ephemeralPublic).put(ciphertext).array();
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException("AES-GCM is missing from this JVM", e);
    } finally {
      Arrays.fill(key, (byte) 0);
    }
  }

  /**
   * Opens a seal made with {@link #seal}.
   *
   * @throws GeneralSecurityException if it is not {@link #SEALED_LENGTH} bytes, was not sealed to
   *     this key, or was changed or moved to another binding or key id
   */
  public static byte[] open(byte[] privateKey, int keyId, byte[] sealed, byte[] binding)
      throws GeneralSecurityException {
    if (sealed.length != SEALED_LENGTH) {
      throw new GeneralSecurityException("sealed routing part must be " + SEALED_LENGTH + " bytes: " + sealed.length);
    }
    X25519PrivateKeyParameters own = new X25519PrivateKeyParameters(privateKey, 0);
    byte[] ephemeralPublic = Arrays.copyOf(sealed, KEY_LENGTH);
    byte[] key;
    try {
      key = derive(own, new X25519PublicKeyParameters(ephemeralPublic, 0), ephemeralPublic,
          own.generatePublicKey().getEncoded());
    } catch (IllegalStateException e) {
      // BouncyCastle refuses a shared secret of all zeros (a low-order point).
      throw new AEADBadTagException("bad ephemeral key");
    }
    try {
      byte[] padded = cipher(Cipher.DECRYPT_MODE, key, keyId, binding)
          .doFinal(sealed, KEY_LENGTH, sealed.length - KEY_LENGTH);
      int length = ByteBuffer.wrap(padded).getShort() & 0xffff;
      if (length > PADDED_LENGTH - 2) {
        throw new GeneralSecurityException("bad padding");
      }
      return Arrays.copyOfRange(padded, 2, 2 + length);
    } finally {
      Arrays.fill(key, (byte) 0);
    }
  }

  private static byte[] derive(
      X25519PrivateKeyParameters own, X25519PublicKeyParameters other, byte[] ephemeralPublic, byte[] routingKey) {
    X25519Agreement agreement = new X25519Agreement();
    agreement.init(own);
    byte[] shared = new byte[agreement.getAgreementSize()];
    agreement.calculateAgreement(other, shared, 0);
    byte[] salt = ByteBuffer.allocate(2 * KEY_LENGTH).put(ephemeralPublic).put(routingKey).array();
    HKDFBytesGenerator hkdf = new HKDFBytesGenerator(new SHA256Digest());
    hkdf.init(new HKDFParameters(shared, salt, INFO.getBytes(StandardCharsets.US_ASCII)));
    byte[] key = new byte[32];
    hkdf.generateBytes(key, 0, key.length);
    Arrays.fill(shared, (byte) 0);
    return key;
  }

  private static Cipher cipher(int mode, byte[] key, int keyId, byte[] binding) throws GeneralSecurityException {
    Cipher c = Cipher.getInstance("AES/GCM/NoPadding");
    c.init(mode, new SecretKeySpec(key, "AES"), new GCMParameterSpec(128, new byte[12]));
    c.updateAAD(ByteBuffer.allocate(AAD_CONTEXT.length + 4 + binding.length)
        .put(AAD_CONTEXT).putInt(keyId).put(binding).array());
    return c;
  }

  private static byte[] sha256(byte[] data) {
    try {
      return MessageDigest.getInstance("SHA-256").digest(data);
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }
}
