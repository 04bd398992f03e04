package org.ferry.server.internal.mailbox;

import java.time.Instant;

/**
 * What the server knows about a mailbox: its owner's Ed25519 public key (raw, 32 bytes), the
 * SHA-256 of its send capability, and when it was made.
 */
public record MailboxRecord(
    MailboxId id, byte[] ownerKey, byte[] sendCapabilityHash, Instant createdAt) {
  public MailboxRecord {
    if (ownerKey.length != 32) {
      throw new IllegalArgumentException("owner key must be 32 bytes: " + ownerKey.length);
    }
    if (sendCapabilityHash.length != 32) {
      throw new IllegalArgumentException(
          "capability hash must be 32 bytes: " + sendCapabilityHash.length);
    }
    ownerKey = ownerKey.clone();
    sendCapabilityHash = sendCapabilityHash.clone();
  }

  @Override
  public byte[] ownerKey() {
    return ownerKey.clone();
  }

  @Override
  public byte[] sendCapabilityHash() {
    return sendCapabilityHash.clone();
  }
}
