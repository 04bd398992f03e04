package org.ferry.sdk;

import java.time.Instant;

/**
 * A message from a contact that could not be decrypted, reported through
 * {@link MessageListener#onDecryptionFailure}. The message itself is lost: only the contact can
 * send it again.
 *
 * @param contactLabel the local label of the contact whose mailbox the envelope came to
 * @param kind why it could not be decrypted, and what the SDK does about it
 * @param receivedAt our clock when it arrived
 * @param messageId the envelope id (hex)
 */
public record DecryptionFailure(String contactLabel, Kind kind, Instant receivedAt, String messageId) {
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
     * The message came with an identity key other than the one pinned for this contact. It is
     * not healed: sending to the contact stays blocked ({@code IDENTITY_CHANGED}) until the user
     * verifies the new safety number.
     */
    IDENTITY_CHANGED,
    /**
     * The envelope was damaged, or made by someone without the contact's keys; it is ignored
     * and starts no healing.
     */
    UNREADABLE,
  }
}
