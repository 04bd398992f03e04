package org.ferry.sdk;

/**
 * Receives what {@link FerryClient#receive} brings in. Called on the thread that called
 * {@code receive}, one event at a time.
 */
public interface MessageListener {
  /**
   * A message arrived. It is already stored durably and acknowledged to the server; if this
   * method throws, the message stays in the local inbox and is handed over again by the next
   * {@code receive}.
   */
  void onMessage(ReceivedMessage message);

  /** Someone accepted our invitation: the contact can now be sent to. */
  default void onContactEstablished(String label) {}

  /**
   * A message from a contact could not be decrypted; it is lost, and the user should be told
   * (the contact can send it again). For {@link DecryptionFailure.Kind#OUT_OF_STEP} the SDK is
   * already restarting the session. Like messages, this is stored before it is handed over: if
   * this method throws, it comes again with the next {@code receive}.
   */
  default void onDecryptionFailure(DecryptionFailure failure) {}

  /**
   * The session with a contact was started afresh (a fresh PQXDH key agreement with the
   * identity key already pinned), after one side could not decrypt the other's messages.
   * Messages sent by either side shortly before may have been lost: tell the user, so that
   * they can ask. Both sides get this call. Stored and handed over like a message.
   */
  default void onSessionRestarted(String contactLabel) {}
}
