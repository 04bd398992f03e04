package org.ferry.proto;

import com.google.protobuf.ByteString;
import com.google.protobuf.InvalidProtocolBufferException;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.PrivateKey;
import java.security.PublicKey;
import java.security.Signature;
import java.security.spec.X509EncodedKeySpec;
import java.time.Duration;
import java.time.Instant;
import org.ferry.proto.v1.RoutingKey;
import org.ferry.proto.v1.SignedRoutingKey;

/**
 * Signing and checking a server's routing key ({@code ferry.v1.SignedRoutingKey}): the server's
 * long-term TLS key (ECDSA P-256, FIPS 186-4, with SHA-256) signs {@value #CONTEXT}, a zero byte,
 * then the serialized {@code RoutingKey}. A sender trusts a routing key only if the server's
 * public key hashes to the fingerprint it pinned and the signature and validity times check out,
 * so the home server that fetched the key for it cannot swap in its own.
 */
public final class RoutingKeys {
  public static final String CONTEXT = "ferry.v1.routing-key";
  /** How far apart two servers' or a client's clocks may be when validity times are checked. */
  public static final Duration CLOCK_SKEW = Duration.ofMinutes(10);
  private static final String ALGORITHM = "SHA256withECDSA";

  private RoutingKeys() {}

  /** Signs {@code key} with the server's TLS private key (EC P-256). */
  public static SignedRoutingKey sign(RoutingKey key, PrivateKey serverKey, PublicKey serverPublic) {
    byte[] body = key.toByteArray();
    try {
      Signature s = Signature.getInstance(ALGORITHM);
      s.initSign(serverKey);
      s.update(signedBytes(body));
      return SignedRoutingKey.newBuilder()
          .setRoutingKey(ByteString.copyFrom(body))
          .setServerPublicKey(ByteString.copyFrom(serverPublic.getEncoded()))
          .setSignature(ByteString.copyFrom(s.sign()))
          .build();
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException("cannot sign the routing key", e);
    }
  }

  /**
   * The routing key of {@code server}, once its public key matches the server's pinned
   * fingerprint, its signature checks out and {@code now} is within its validity (give or take
   * {@link #CLOCK_SKEW}).
   *
   * @throws GeneralSecurityException naming what did not check out
   */
  public static RoutingKey verify(SignedRoutingKey signed, ServerAddress server, Instant now)
      throws GeneralSecurityException {
    PublicKey serverKey;
    try {
      serverKey = KeyFactory.getInstance("EC")
          .generatePublic(new X509EncodedKeySpec(signed.getServerPublicKey().toByteArray()));
    } catch (GeneralSecurityException | IllegalArgumentException e) {
      throw new GeneralSecurityException("the server's key is not an EC public key");
    }
    if (!server.matches(serverKey)) {
      throw new GeneralSecurityException("the routing key is signed by a key other than " + server + "'s");
    }
    Signature s = Signature.getInstance(ALGORITHM);
    s.initVerify(serverKey);
    s.update(signedBytes(signed.getRoutingKey().toByteArray()));
    boolean good;
    try {
      good = s.verify(signed.getSignature().toByteArray());
    } catch (java.security.SignatureException e) {
      good = false;
    }
    if (!good) {
      throw new GeneralSecurityException("bad signature on " + server + "'s routing key");
    }
    RoutingKey key;
    try {
      key = RoutingKey.parseFrom(signed.getRoutingKey());
    } catch (InvalidProtocolBufferException e) {
      throw new GeneralSecurityException("unreadable routing key");
    }
    if (key.getPublicKey().size() != RoutingSeal.KEY_LENGTH) {
      throw new GeneralSecurityException("routing key must be 32 bytes: " + key.getPublicKey().size());
    }
    if (!validAt(key, now)) {
      throw new GeneralSecurityException(server + "'s routing key is not valid now");
    }
    return key;
  }

  /** Whether {@code key} is valid at {@code now}, allowing {@link #CLOCK_SKEW} either way. */
  public static boolean validAt(RoutingKey key, Instant now) {
    long millis = now.toEpochMilli();
    long skew = CLOCK_SKEW.toMillis();
    return millis + skew >= key.getNotBefore() && millis - skew <= key.getNotAfter();
  }

  private static byte[] signedBytes(byte[] body) {
    byte[] context = CONTEXT.getBytes(StandardCharsets.US_ASCII);
    byte[] out = new byte[context.length + 1 + body.length];
    System.arraycopy(context, 0, out, 0, context.length);
    System.arraycopy(body, 0, out, context.length + 1, body.length);
    return out;
  }
}
