package org.ferry.it;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.ferry.sdk.DecryptionFailure;
import org.ferry.sdk.FerryClient;
import org.ferry.sdk.MessageListener;
import org.ferry.sdk.ReceivedMessage;

/** What one user's listener was told during one receive. */
final class Seen implements MessageListener {
  final List<String> texts = new ArrayList<>();
  final List<DecryptionFailure> failures = new ArrayList<>();
  final List<String> restarted = new ArrayList<>();

  @Override
  public void onMessage(ReceivedMessage m) {
    texts.add(m.contactLabel() + ": " + m.text());
  }

  @Override
  public void onDecryptionFailure(DecryptionFailure f) {
    failures.add(f);
  }

  @Override
  public void onSessionRestarted(String label) {
    restarted.add(label);
  }

  /** Receives until half a second passes with nothing new; returns what was handed over. */
  static Seen receive(FerryClient c) {
    Seen seen = new Seen();
    c.receive(Duration.ofMillis(500), seen);
    return seen;
  }

  /**
   * Alice (labelled "alice" at Bob's) and Bob (labelled "bob" at Alice's) each send one message;
   * each gets the other's, with nothing to report on either side.
   */
  static void assertFlowQuietlyBothWays(FerryClient alice, FerryClient bob) {
    alice.send("bob", "flowing");
    bob.send("alice", "both ways");
    Seen bobAfter = receive(bob);
    Seen aliceAfter = receive(alice);
    assertEquals(List.of("alice: flowing"), bobAfter.texts);
    assertEquals(List.of("bob: both ways"), aliceAfter.texts);
    assertEquals(List.of(), bobAfter.failures);
    assertEquals(List.of(), aliceAfter.failures);
    assertEquals(List.of(), bobAfter.restarted);
    assertEquals(List.of(), aliceAfter.restarted);
  }
}
