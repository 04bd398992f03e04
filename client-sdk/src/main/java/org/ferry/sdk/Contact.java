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
 */
public record Contact(
    String label, State state, Optional<String> safetyNumber, Optional<Instant> lastReceived) {

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
