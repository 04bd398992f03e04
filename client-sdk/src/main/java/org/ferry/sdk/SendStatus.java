package org.ferry.sdk;

import java.time.Instant;
import java.util.Objects;
import java.util.Optional;

/**
 * A send that is not settled yet, or that failed: one entry of {@link FerryClient#sends}.
 *
 * @param messageId the message id (hex) that {@code send} or {@code sendAsync} gave
 * @param contactLabel the contact's label now ({@code "(removed contact)"} if it is gone)
 * @param server {@code HOST:PORT} of the contact's server
 * @param state where the message is
 * @param queuedAt when it was sent (queued in the outbox)
 * @param heldByHomeSince for {@link State#FORWARDING}: since when our home server holds it
 * @param failure for {@link State#FAILED}: why, and when it was known
 */
public record SendStatus(String messageId, String contactLabel, String server, State state, Instant queuedAt,
    Optional<Instant> heldByHomeSince, Optional<Failure> failure) {

  public SendStatus {
    Objects.requireNonNull(messageId, "messageId");
    Objects.requireNonNull(contactLabel, "contactLabel");
    Objects.requireNonNull(server, "server");
    Objects.requireNonNull(state, "state");
    Objects.requireNonNull(queuedAt, "queuedAt");
    Objects.requireNonNull(heldByHomeSince, "heldByHomeSince");
    Objects.requireNonNull(failure, "failure");
  }

  /** Where a send is. */
  public enum State {
    /** In the local outbox: our home server does not hold it yet. */
    QUEUED,
    /** Held by our home server, which forwards it to the contact's server (another one). */
    FORWARDING,
    /** It will not be delivered. */
    FAILED,
  }

  /**
   * Why a send failed.
   *
   * @param reason what kind of failure (EXPIRED, REJECTED, PEER_REFUSED, UNKNOWN_CONTACT...)
   * @param message for people, naming the hop that failed
   * @param at when the failure was known here
   */
  public record Failure(FerryException.Reason reason, String message, Instant at) {}
}
