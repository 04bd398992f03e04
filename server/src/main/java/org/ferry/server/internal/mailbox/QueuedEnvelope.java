package org.ferry.server.internal.mailbox;

import java.time.Instant;
import org.ferry.proto.PaddingBuckets;

/** An envelope waiting in a mailbox at position {@code seq}. */
public record QueuedEnvelope(
    MailboxId mailbox, long seq, byte[] envelopeId, byte[] body, Instant expiresAt) {
  public static final int ENVELOPE_ID_LENGTH = 16;

  public QueuedEnvelope {
    if (envelopeId.length != ENVELOPE_ID_LENGTH) {
      throw new IllegalArgumentException("envelope id must be 16 bytes: " + envelopeId.length);
    }
    if (!PaddingBuckets.isBucketSize(body.length)) {
      throw new IllegalArgumentException("body is not a bucket size: " + body.length);
    }
  }

  public boolean isExpired(Instant now) {
    return !now.isBefore(expiresAt);
  }
}
