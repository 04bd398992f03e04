package org.ferry.proto;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.security.GeneralSecurityException;
import java.security.KeyPairGenerator;
import java.security.SecureRandom;
import java.security.spec.ECGenParameterSpec;
import java.time.Instant;
import com.google.protobuf.ByteString;
import org.ferry.proto.v1.RoutingKey;
import org.ferry.proto.v1.SignedRoutingKey;
import org.junit.jupiter.api.Test;

class RoutingSealTest {
  private final SecureRandom random = new SecureRandom();
  private final byte[] itemId = new byte[16];
  private final byte[] body = new byte[1024];

  @Test
  void aSealOpensWithTheRoutingKeyAndIsAlwaysTheSameSize() throws Exception {
    RoutingSeal.KeyPair key = RoutingSeal.generate(random);
    byte[] binding = RoutingSeal.sendBinding(itemId, body);
    for (int n : new int[] {0, 1, 90, RoutingSeal.PADDED_LENGTH - 2}) {
      byte[] plain = new byte[n];
      random.nextBytes(plain);
      byte[] sealed = RoutingSeal.seal(key.publicKey(), 7, plain, binding, random);
      assertEquals(RoutingSeal.SEALED_LENGTH, sealed.length);
      assertArrayEquals(plain, RoutingSeal.open(key.privateKey(), 7, sealed, binding));
    }
    assertArrayEquals(key.publicKey(), RoutingSeal.publicKeyOf(key.privateKey()));
  }

  @Test
  void aSealDoesNotOpenUnderAnotherKeyItemBodyKeyIdOrAfterAnyChange() {
    RoutingSeal.KeyPair key = RoutingSeal.generate(random);
    byte[] binding = RoutingSeal.sendBinding(itemId, body);
    byte[] sealed = RoutingSeal.seal(key.publicKey(), 1, new byte[] {1, 2, 3}, binding, random);
    assertThrows(GeneralSecurityException.class,
        () -> RoutingSeal.open(RoutingSeal.generate(random).privateKey(), 1, sealed, binding));
    assertThrows(GeneralSecurityException.class, () -> RoutingSeal.open(key.privateKey(), 2, sealed, binding));
    byte[] otherBody = body.clone();
    otherBody[5] = 1;
    assertThrows(GeneralSecurityException.class,
        () -> RoutingSeal.open(key.privateKey(), 1, sealed, RoutingSeal.sendBinding(itemId, otherBody)));
    for (int i = 0; i < sealed.length; i += 17) {
      byte[] changed = sealed.clone();
      changed[i] ^= 1;
      assertThrows(GeneralSecurityException.class, () -> RoutingSeal.open(key.privateKey(), 1, changed, binding));
    }
    assertThrows(GeneralSecurityException.class,
        () -> RoutingSeal.open(key.privateKey(), 1, new byte[RoutingSeal.SEALED_LENGTH - 1], binding));
    assertThrows(GeneralSecurityException.class,
        () -> RoutingSeal.open(key.privateKey(), 1, new byte[RoutingSeal.SEALED_LENGTH], binding));
    assertThrows(IllegalArgumentException.class,
        () -> RoutingSeal.seal(key.publicKey(), 1, new byte[RoutingSeal.PADDED_LENGTH - 1], binding, random));
  }

  @Test
  void aSignedRoutingKeyChecksOnlyAgainstItsServersFingerprintAndWhileValid() throws Exception {
    KeyPairGenerator gen = KeyPairGenerator.getInstance("EC");
    gen.initialize(new ECGenParameterSpec("secp256r1"));
    java.security.KeyPair server = gen.generateKeyPair();
    java.security.KeyPair other = gen.generateKeyPair();
    ServerAddress address = new ServerAddress("127.0.0.1", 1, ServerAddress.fingerprintOf(server.getPublic()));
    Instant now = Instant.parse("2026-11-30T00:00:00Z");
    RoutingKey key = RoutingKey.newBuilder()
        .setKeyId(3)
        .setPublicKey(ByteString.copyFrom(RoutingSeal.generate(random).publicKey()))
        .setNotBefore(now.toEpochMilli())
        .setNotAfter(now.plusSeconds(3600).toEpochMilli())
        .build();
    SignedRoutingKey signed = RoutingKeys.sign(key, server.getPrivate(), server.getPublic());
    assertEquals(key, RoutingKeys.verify(signed, address, now));
    // Signed by another key, even with that key's public half attached.
    assertThrows(GeneralSecurityException.class,
        () -> RoutingKeys.verify(RoutingKeys.sign(key, other.getPrivate(), other.getPublic()), address, now));
    // Another server's public key with our signature.
    assertThrows(GeneralSecurityException.class, () -> RoutingKeys.verify(
        signed.toBuilder().setServerPublicKey(ByteString.copyFrom(other.getPublic().getEncoded())).build(),
        address, now));
    // A changed key under the old signature.
    assertThrows(GeneralSecurityException.class, () -> RoutingKeys.verify(
        signed.toBuilder().setRoutingKey(key.toBuilder().setKeyId(4).build().toByteString()).build(),
        address, now));
    assertThrows(GeneralSecurityException.class,
        () -> RoutingKeys.verify(signed, address, now.plusSeconds(3600).plus(RoutingKeys.CLOCK_SKEW).plusSeconds(1)));
    assertThrows(GeneralSecurityException.class,
        () -> RoutingKeys.verify(signed, address, now.minus(RoutingKeys.CLOCK_SKEW).minusSeconds(1)));
  }
}
