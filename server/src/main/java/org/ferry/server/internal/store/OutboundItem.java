package org.ferry.server.internal.store;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import org.ferry.proto.PaddingBuckets;
import org.ferry.proto.RoutingSeal;
import org.ferry.server.internal.mailbox.MailboxId;

/**
 * An item in the home server's custody for another server.
 *
 * @param destination the destination's address, HOST:PORT#FINGERPRINT, as the client gave it
 * @param itemId 16 bytes, the envelope id
 * @param keyId the destination's routing key id the seal names
 * @param sealedRouting {@link RoutingSeal#SEALED_LENGTH} bytes
 * @param body the envelope body, one of the bucket sizes
 * @param expiresAt when the home server gives up (and tells the forwarder)
 * @param forwarder the client's forwarder mailbox, where the outcome goes
 */
public record OutboundItem(
    String destination, byte[] itemId, int keyId, byte[] sealedRouting, byte[] body, Instant expiresAt,
    MailboxId forwarder) {
  private static final byte FORMAT = 1;

  public OutboundItem {
    if (itemId.length != 16 || sealedRouting.length != RoutingSeal.SEALED_LENGTH
        || !PaddingBuckets.isBucketSize(body.length)) {
      throw new IllegalArgumentException("malformed outbound item");
    }
  }

  byte[] encode() {
    byte[] dest = destination.getBytes(StandardCharsets.UTF_8);
    return ByteBuffer.allocate(1 + 8 + 4 + 16 + 32 + 2 + dest.length + sealedRouting.length + body.length)
        .put(FORMAT).putLong(expiresAt.toEpochMilli()).putInt(keyId).put(itemId).put(forwarder.bytes())
        .putShort((short) dest.length).put(dest).put(sealedRouting).put(body).array();
  }

  static OutboundItem decode(byte[] value) {
    ByteBuffer b = ByteBuffer.wrap(value);
    if (b.get() != FORMAT) {
      throw new StoreException("unknown outbound record format (newer server's data?)", null);
    }
    Instant expires = Instant.ofEpochMilli(b.getLong());
    int keyId = b.getInt();
    byte[] id = new byte[16];
    b.get(id);
    byte[] forwarder = new byte[32];
    b.get(forwarder);
    byte[] dest = new byte[b.getShort() & 0xffff];
    b.get(dest);
    byte[] sealed = new byte[RoutingSeal.SEALED_LENGTH];
    b.get(sealed);
    byte[] body = new byte[b.remaining()];
    b.get(body);
    return new OutboundItem(new String(dest, StandardCharsets.UTF_8), id, keyId, sealed, body, expires,
        new MailboxId(forwarder));
  }

  /** Body bytes of a stored value, without decoding the rest. */
  static int bodyLength(byte[] value) {
    ByteBuffer b = ByteBuffer.wrap(value, 1 + 8 + 4 + 16 + 32, 2);
    int destLength = b.getShort() & 0xffff;
    return value.length - (1 + 8 + 4 + 16 + 32 + 2 + destLength + RoutingSeal.SEALED_LENGTH);
  }

  static long expiresAtMillis(byte[] value) {
    return ByteBuffer.wrap(value, 1, 8).getLong();
  }
}
