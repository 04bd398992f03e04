package org.ferry.server.internal.federation;

import com.google.protobuf.ByteString;
import com.google.protobuf.InvalidProtocolBufferException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.SecureRandom;
import java.time.Duration;
import java.time.Instant;
import org.ferry.datadir.PrivateFiles;
import org.ferry.proto.RoutingKeys;
import org.ferry.proto.RoutingSeal;
import org.ferry.proto.v1.Routing;
import org.ferry.proto.v1.RoutingKey;
import org.ferry.proto.v1.SignedRoutingKey;
import org.ferry.relay.internal.tls.TlsIdentity;

/**
 * The server's routing key (X25519, {@link RoutingSeal}): senders seal the routing part of a
 * forwarded item to it. Kept in {@code identity/routing-key} beside the TLS key, so backups carry
 * it: version byte, key id (4 bytes), created-at millis (8), private key (32). Signed with the TLS
 * key at every start ({@link RoutingKeys#sign}), valid from its creation until
 * {@link #VALIDITY} after the start.
 */
public final class RoutingKeyring {
  /** How long a signature made at start stays valid; servers re-sign at every start. */
  public static final Duration VALIDITY = Duration.ofDays(90);
  static final String FILE = "routing-key";
  private static final byte VERSION = 1;

  private final int keyId;
  private final byte[] privateKey;
  private final SignedRoutingKey signed;

  private RoutingKeyring(int keyId, byte[] privateKey, SignedRoutingKey signed) {
    this.keyId = keyId;
    this.privateKey = privateKey;
    this.signed = signed;
  }

  /**
   * Loads the routing key from {@code identityDir}, or makes one, and signs it with the TLS key.
   * The caller holds the data directory's lock.
   */
  public static RoutingKeyring loadOrCreate(Path identityDir, TlsIdentity tls, Instant now, SecureRandom random)
      throws IOException {
    Path file = identityDir.resolve(FILE);
    if (!Files.exists(file)) {
      Files.createDirectories(identityDir);
      RoutingSeal.KeyPair pair = RoutingSeal.generate(random);
      int id = random.nextInt() & 0x7fffffff;
      PrivateFiles.createNew(file, ByteBuffer.allocate(1 + 4 + 8 + 32)
          .put(VERSION).putInt(id).putLong(now.toEpochMilli()).put(pair.privateKey()).array());
    }
    byte[] stored = Files.readAllBytes(file);
    if (stored.length != 45 || stored[0] != VERSION) {
      throw new IOException(file + " is not a routing key; restore it from backup, or remove it to make a"
          + " new one (senders fetch the new key; items sealed to the old one are refused)");
    }
    ByteBuffer b = ByteBuffer.wrap(stored, 1, 44);
    int id = b.getInt();
    long created = b.getLong();
    byte[] priv = new byte[32];
    b.get(priv);
    RoutingKey key = RoutingKey.newBuilder()
        .setKeyId(id)
        .setPublicKey(ByteString.copyFrom(RoutingSeal.publicKeyOf(priv)))
        .setNotBefore(Math.min(created, now.toEpochMilli()))
        .setNotAfter(now.plus(VALIDITY).toEpochMilli())
        .build();
    SignedRoutingKey signed = RoutingKeys.sign(key, tls.privateKey(), tls.certificate().getPublicKey());
    return new RoutingKeyring(id, priv, signed);
  }

  public SignedRoutingKey signed() {
    return signed;
  }

  /** Why a routing part was not accepted. */
  static final class RefusedException extends Exception {
    private static final long serialVersionUID = 1L;
    final boolean unknownKey;

    RefusedException(boolean unknownKey, String message) {
      super(message, null, false, false);
      this.unknownKey = unknownKey;
    }
  }

  /**
   * Opens a sealed routing part.
   *
   * @throws RefusedException if the key id is not this server's ({@code unknownKey}), or the seal
   *     does not open with {@code binding}, or what it holds is not a Routing
   */
  Routing open(int id, byte[] sealed, byte[] binding) throws RefusedException {
    if (id != keyId) {
      throw new RefusedException(true, "unknown routing key id; fetch this server's routing key again");
    }
    byte[] plain;
    try {
      plain = RoutingSeal.open(privateKey, id, sealed, binding);
    } catch (GeneralSecurityException e) {
      throw new RefusedException(false, "the routing part does not open with this server's routing key");
    }
    try {
      return Routing.parseFrom(plain);
    } catch (InvalidProtocolBufferException e) {
      throw new RefusedException(false, "the routing part is not a Routing message");
    }
  }
}
