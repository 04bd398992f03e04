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
}
