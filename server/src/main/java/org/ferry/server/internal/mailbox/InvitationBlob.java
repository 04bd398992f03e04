package org.ferry.server.internal.mailbox;

import java.time.Duration;
import java.time.Instant;
import java.util.Optional;

/**
 * An invitation's encrypted bundle, bound to the inviter's mailbox. Once taken, only the fact
 * that it was taken is kept until it would have expired, so that a second taker is told
 * "already used" rather than "not found". A taker that gave a take id keeps the bundle within
 * reach for a short grace time, for a retry whose first answer was lost: then
 * {@code takeIdHash} and {@code takenAt} are set and the bundle is kept until the grace ends.
 */
public record InvitationBlob(
    MailboxId mailbox, byte[] fetchTokenHash, byte[] blob, Instant expiresAt, boolean taken,
    Optional<byte[]> takeIdHash, Optional<Instant> takenAt) {
  /**
   * How long a taker that gave a take id may ask for the same bundle again: long enough for a
   * client to notice a lost answer and retry, short enough that the bundle is soon erased.
   */
  public static final Duration TAKE_GRACE = Duration.ofMinutes(10);

  public InvitationBlob {
    if (fetchTokenHash.length != 32) {
      throw new IllegalArgumentException("fetch token hash must be 32 bytes");
    }
    if (takeIdHash.isPresent() != takenAt.isPresent() || (takeIdHash.isPresent() && !taken)) {
      throw new IllegalArgumentException("a take id comes with its time, and only once taken");
    }
    if (takeIdHash.isPresent() && takeIdHash.get().length != 32) {
      throw new IllegalArgumentException("take id hash must be 32 bytes");
    }
  }

  /** A bundle nobody has taken yet. */
  public static InvitationBlob untaken(MailboxId mailbox, byte[] fetchTokenHash, byte[] blob, Instant expiresAt) {
    return new InvitationBlob(mailbox, fetchTokenHash, blob, expiresAt, false, Optional.empty(), Optional.empty());
  }

  /** The "taken" marker, without the bundle. */
  public InvitationBlob takenMarker() {
    return new InvitationBlob(mailbox, fetchTokenHash, new byte[0], expiresAt, true, Optional.empty(), Optional.empty());
  }

  /** Taken by a taker that gave a take id: the bundle is kept for its retries. */
  public InvitationBlob takenBy(byte[] takeIdHash, Instant at) {
    return new InvitationBlob(mailbox, fetchTokenHash, blob, expiresAt, true, Optional.of(takeIdHash), Optional.of(at));
  }

  public boolean isExpired(Instant now) {
    return !now.isBefore(expiresAt);
  }

  /** Whether the {@link #TAKE_GRACE} of a take with a take id has ended by {@code now}. */
  public boolean graceOver(Instant now) {
    return takenAt.map(t -> !now.isBefore(t.plus(TAKE_GRACE))).orElse(true);
  }
}
