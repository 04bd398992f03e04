package org.ferry.server.internal.mailbox;

import java.time.Instant;

/**
 * An invitation's encrypted bundle, bound to the inviter's mailbox. Once taken, the bundle is
 * erased and only the fact that it was taken is kept until it would have expired, so that a
 * second taker is told "already used" rather than "not found".
 */
public record InvitationBlob(
    MailboxId mailbox, byte[] fetchTokenHash, byte[] blob, Instant expiresAt, boolean taken) {
  public InvitationBlob {
    if (fetchTokenHash.length != 32) {
      throw new IllegalArgumentException("fetch token hash must be 32 bytes");
    }
  }

  public boolean isExpired(Instant now) {
    return !now.isBefore(expiresAt);
  }
}
