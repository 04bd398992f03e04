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
   * A message sent with {@link FerryClient#sendAsync} is held durably by the contact's server
   * (today the server the contact's mailbox lives on; with federation, our home server first).
   *
   * @param messageId the id {@code sendAsync}'s future completed with
   */
  default void onSendAccepted(String contactLabel, String messageId) {}

  /**
   * A message sent with {@link FerryClient#sendAsync} will not be delivered: the contact's
   * mailbox is gone or refuses us, or the contact was removed. Not called for a network outage:
   * the outbox keeps trying then.
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
