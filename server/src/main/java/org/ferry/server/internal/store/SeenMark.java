package org.ferry.server.internal.store;

import java.nio.ByteBuffer;
import java.time.Instant;

/**
 * That a peer server delivered an item: its fingerprint (32 bytes) and the item id (16 bytes),
 * remembered until {@code until} (the item's expiry plus the allowed clock skew).
 */
public record SeenMark(byte[] peer, byte[] itemId, Instant until) {
  public static final int KEY_LENGTH = 32 + 16;

  public SeenMark {
    if (peer.length != 32 || itemId.length != 16) {
      throw new IllegalArgumentException("a seen mark needs a 32-byte peer and a 16-byte item id");
    }
    peer = peer.clone();
    itemId = itemId.clone();
  }

  /** The key under which {@code peer}'s delivery of {@code itemId} is remembered: 48 bytes. */
  public static byte[] key(byte[] peer, byte[] itemId) {
    return ByteBuffer.allocate(KEY_LENGTH).put(peer).put(itemId).array();
  }

  byte[] key() {
    return key(peer, itemId);
  }

  byte[] expiryKey(byte kind) {
    return ByteBuffer.allocate(1 + 8 + KEY_LENGTH).put(kind).putLong(until.toEpochMilli()).put(peer).put(itemId)
        .array();
  }
}
