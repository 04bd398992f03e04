package org.ferry.examples;

import java.nio.file.Path;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.ferry.proto.ServerAddress;
import org.ferry.sdk.Connectivity;
import org.ferry.sdk.FerryClient;
import org.ferry.sdk.FerryException;
import org.ferry.sdk.FerryListener;
import org.ferry.sdk.ReceivedMessage;

/**
 * The always-on example that opens docs/sdk.md, as code that compiles: the body of
 * {@link #chat} between the {@code docs/sdk.md:begin} and {@code docs/sdk.md:end} markers is
 * the document's first {@code java} block, and {@code SdkDocsExampleTest} fails when the two
 * differ. {@code AlwaysOnExampleTest} (integration-tests) runs it against a real server.
 */
public final class AlwaysOnExample {
  private AlwaysOnExample() {}

  /** What the app shows the user; the example's only link to a user interface. */
  public interface Screen {
    /** Shows one line (an event, or a message as {@code LABEL: TEXT}). */
    void show(String line);

    /**
     * Shows {@code safetyNumber} and asks the user whether it is the same as the one on the
     * contact's own screen (compared in person or over a call they trust).
     */
    boolean userConfirms(String contactLabel, String safetyNumber);
  }

  /**
   * Joins Alice (accepting her invitation, on the first run), says hello, shows her answer and
   * the events on the way, and marks her verified once the user has compared safety numbers.
   * Returns after her first message, or after 60 s without one.
   *
   * @param appDir the app's own directory; the client keeps its data in {@code appDir/ferry}
   * @param storageKey 32 bytes, the same on every run (from the platform's keystore)
   * @param serverAddress the home server, {@code HOST:PORT#FINGERPRINT}
   * @param invitationUri the {@code ferry:invite/...} URI Alice showed the user
   * @return whether Alice answered within 60 s
   * @throws FerryException as the SDK's methods say (UNREACHABLE, INVITATION_USED, ...)
   */
  public static boolean chat(Path appDir, byte[] storageKey, String serverAddress, String invitationUri,
      Screen screen) throws InterruptedException {
    // docs/sdk.md:begin
    try (FerryClient me = FerryClient.builder()
        .dataDirectory(appDir.resolve("ferry"))     // one client per directory at a time
        .storageKey(storageKey)                     // 32 bytes, the same every time
        .build()) {
      if (!me.isInitialized()) {
        me.initialize(ServerAddress.parse(serverAddress));   // checks the server's pinned key
      }
      if (me.contact("alice").isEmpty()) {
        me.acceptInvitation(invitationUri, "alice");          // the URI Alice showed as a QR code
      }

      // Events come one at a time, in order, on the client's event thread (or on an
      // executor of yours: addListener(listener, executor)).
      CountDownLatch answered = new CountDownLatch(1);
      me.addListener(new FerryListener() {
        @Override
        public void onMessage(ReceivedMessage message) {     // already stored durably
          screen.show(message.contactLabel() + ": " + message.text());
          answered.countDown();
        }

        @Override
        public void onContactEstablished(String label) {     // they accepted our invitation
          screen.show(label + " is now a contact");
        }

        @Override
        public void onSendAccepted(String label, String messageId) {
          screen.show("delivered to " + label + "'s server");
        }

        @Override
        public void onSendFailed(String label, String messageId, FerryException why) {
          screen.show("not delivered to " + label + ": " + why.reason());
        }

        @Override
        public void onIdentityChanged(String label, String newSafetyNumber) {
          // Sending to them is refused until the user compares the new number and we verify.
          screen.show(label + "'s safety number changed: compare it before writing again");
        }

        @Override
        public void onConnectivityChanged(Connectivity state) {
          screen.show(state.connected() ? "online" : "offline, trying again");
        }
      });
      me.start();          // receives in the background and reconnects by itself

      // Returns at once: the message is encrypted and kept in the outbox, which delivers it
      // (across outages and restarts) and tells the listener.
      me.sendAsync("alice", "hello");

      // The user compares the safety number with Alice's screen; then mark her verified.
      String number = me.contact("alice").orElseThrow().safetyNumber().orElseThrow();
      if (screen.userConfirms("alice", number)) {
        me.verify("alice", number);
      }

      // An app would keep running; this example waits for Alice's answer, then closes
      // (which stops the loop; anything not yet sent stays in the outbox for next time).
      return answered.await(60, TimeUnit.SECONDS);
    }
    // docs/sdk.md:end
  }
}
