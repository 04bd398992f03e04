package org.ferry.sdk;

/**
 * Everything an always-on client tells the app: what {@link MessageListener} receives, plus the
 * fate of sends, identity changes and connectivity. Register with
 * {@link FerryClient#addListener}; every method has an empty default, so implement only what
 * the app shows.
 *
 * <p>Calls come on the executor given with the listener (by default one thread of the client's
 * own), one at a time and in the order things happened. Messages and notices are stored
 * durably before they are handed over and are removed from the local inbox once every
 * listener has returned; if a listener throws, they are handed over again later (at least
 * once). The other events are not stored: a listener added later does not get them.
 */
public interface FerryListener extends MessageListener {
  /**
   * A message sent with {@link FerryClient#sendAsync} is held durably by our home server: in the
   * contact's mailbox if it is on the home server (then {@link #onSendDelivered} follows at
   * once), else in the home server's queue for the contact's server, which it keeps trying
   * until that server accepts it or its time to live runs out.
   *
   * @param messageId the id {@code sendAsync}'s future completed with
   */
  default void onSendAccepted(String contactLabel, String messageId) {}

  /**
   * A message is held durably by the contact's server, in their mailbox. For a contact on our
   * home server, called right after {@link #onSendAccepted}; for one on another server, when
   * our home server hears that server accepted it (also for messages sent with the blocking
   * {@link FerryClient#send}). At most once per message, unless the app's data directory is
   * restored from a copy.
   *
   * @param messageId the message id {@code sendAsync} or {@code send} gave
   */
  default void onSendDelivered(String contactLabel, String messageId) {}

  /**
   * A message will not be delivered: the contact's mailbox is gone or refuses us, the contact
   * was removed, or (for a contact on another server) that server did not accept it before its
   * time to live ran out (EXPIRED) or a server's federation policy refuses the other
   * (PEER_REFUSED); the message names the hop that failed. Not called for a network outage:
   * the outbox, and for another server our home server, keep trying then. Failed sends are also
   * listed by {@link FerryClient#sends}.
   *
   * @param failure why, with its {@link FerryException.Reason}
   */
  default void onSendFailed(String contactLabel, String messageId, FerryException failure) {}

  /**
   * A contact's identity key changed (a message or session restart came under another key):
   * sending to them is refused with IDENTITY_CHANGED until the user compares the new safety
   * number with the contact and calls {@link FerryClient#verify}.
   *
   * @param newSafetyNumber 60 digits in groups of five, computed with the new key
   */
  default void onIdentityChanged(String contactLabel, String newSafetyNumber) {}

  /**
   * The background loop ({@link FerryClient#start}) connected to the home server, or lost it
   * and will try again.
   */
  default void onConnectivityChanged(Connectivity state) {}
}
