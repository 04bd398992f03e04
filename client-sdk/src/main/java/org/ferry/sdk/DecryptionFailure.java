package org.ferry.sdk;

import java.time.Instant;
import java.util.Optional;

/**
 * A message from a contact that could not be decrypted, reported through
 * {@link MessageListener#onDecryptionFailure}. The message itself is lost: only the contact can
 * send it again.
 *
 * @param contactLabel the local label of the contact whose mailbox the envelope came to
 * @param kind why it could not be decrypted, and what the SDK does about it
 * @param receivedAt our clock when it arrived
 * @param messageId the envelope id (hex)
 * @param newSafetyNumber for {@link Kind#IDENTITY_CHANGED}: the safety number with the identity
 *     key the message came with (60 digits in groups of five), for the user to compare with the
 *     contact's before calling {@link FerryClient#verify}; empty for the other kinds
 */
public record DecryptionFailure(
    String contactLabel, Kind kind, Instant receivedAt, String messageId, Optional<String> newSafetyNumber) {
  /** Why a message could not be decrypted. */
  public enum Kind {
    /**
     * The two sides' sessions are out of step, typically because one side's data directory was
     * restored from a copy (a backup, a cloned device). The SDK restarts the session by itself
     * (a fresh key agreement under the identity keys already pinned) and calls
     * {@link MessageListener#onSessionRestarted} on both sides once it has.
     */
    OUT_OF_STEP,
    /**
     * The message (or a session restart) came with an identity key other than the one pinned
     * for this contact: the contact reinstalled, or someone else speaks in their name. The new
     * key is kept as pending ({@link Contact#pendingSafetyNumber}) and every send to the
     * contact is refused ({@code IDENTITY_CHANGED}) until the user compares
     * {@link #newSafetyNumber} with the contact's (in person or over a trusted call) and calls
     * {@link FerryClient#verify}, which then restarts the session under the new key.
     */
    IDENTITY_CHANGED,
    /**
     * The envelope was damaged, or made by someone without the contact's keys; it is ignored
     * and starts no healing.
     */
    UNREADABLE,
  }
}
