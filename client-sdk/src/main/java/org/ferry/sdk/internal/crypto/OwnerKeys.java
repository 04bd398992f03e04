package org.ferry.sdk.internal.crypto;

import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.PrivateKey;
import java.security.Signature;
import java.security.interfaces.EdECPublicKey;
import java.security.spec.PKCS8EncodedKeySpec;

/**
 * Ed25519 keys that prove mailbox ownership to a server. Statements are signed as
 * {@code context || 0x00 || parts}, matching the server's verifier.
 */
public final class OwnerKeys {
  public static final String RECEIVE_CONTEXT = "ferry.v1.receive";
  public static final String PUT_INVITATION_CONTEXT = "ferry.v1.put-invitation";

  private OwnerKeys() {}

  public static KeyPair generate() {
    try {
      return KeyPairGenerator.getInstance("Ed25519").generateKeyPair();
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException("Ed25519 unavailable", e);
    }
  }

  /** The RFC 8032 encoding (32 bytes) of the key pair's public key. */
  public static byte[] rawPublicKey(KeyPair pair) {
    EdECPublicKey pub = (EdECPublicKey) pair.getPublic();
    byte[] y = pub.getPoint().getY().toByteArray();
    byte[] le = new byte[32];
    for (int i = 0; i < 32 && i < y.length; i++) {
      le[i] = y[y.length - 1 - i];
    }
    if (pub.getPoint().isXOdd()) {
      le[31] |= (byte) 0x80;
    }
    return le;
  }

  public static PrivateKey privateKey(byte[] pkcs8) {
    try {
      return KeyFactory.getInstance("Ed25519").generatePrivate(new PKCS8EncodedKeySpec(pkcs8));
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException("stored owner key is unreadable", e);
    }
  }

  public static byte[] sign(PrivateKey key, String context, byte[]... parts) {
    try {
      Signature s = Signature.getInstance("Ed25519");
      s.initSign(key);
      s.update(context.getBytes(StandardCharsets.US_ASCII));
      s.update((byte) 0);
      for (byte[] p : parts) {
        s.update(p);
      }
      return s.sign();
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException("Ed25519 signing failed", e);
    }
  }
}
