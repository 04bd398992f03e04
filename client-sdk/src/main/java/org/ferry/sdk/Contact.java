package org.ferry.sdk;

import java.time.Instant;
import java.util.Optional;

/**
 * A contact as the app sees it.
 *
 * @param label the local name chosen when inviting or accepting
 * @param state whether messages can flow yet
 * @param safetyNumber the 60-digit safety number to compare in person, once a session exists
 * @param lastReceived when a message from this contact last arrived, if ever
 * @param pendingSafetyNumber while a new identity key that came in this contact's name waits for
 *     the user's verification: the safety number with that key (60 digits in groups of five).
 *     Sending to the contact is refused ({@code IDENTITY_CHANGED}) until
 *     {@link FerryClient#verify} confirms it; {@code safetyNumber} is still the old one then
 * @param verified whether the user confirmed {@code safetyNumber} with {@link FerryClient#verify};
 *     false again once a new key is pending
 */
public record Contact(
    String label,
    State state,
    Optional<String> safetyNumber,
    Optional<Instant> lastReceived,
    Optional<String> pendingSafetyNumber,
    boolean verified) {

  /** Where a contact relationship stands. */
  public enum State {
    /** We invited them; they have not answered yet. */
    INVITED,
    /** We invited them and the invitation ran out before they answered. */
    INVITATION_EXPIRED,
    /** A session exists; messages flow both ways. */
    ESTABLISHED,
  }
}
