package org.ferry.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import java.io.ByteArrayInputStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Optional;
import org.ferry.proto.local.v1.ContactRecord;
import org.ferry.proto.local.v1.LocalIdentity;
import org.ferry.sdk.Contact;
import org.ferry.sdk.DecryptionFailure;
import org.ferry.sdk.FerryClient;
import org.ferry.sdk.FerryException;
import org.ferry.sdk.cli.ClientMain;
import org.ferry.sdk.internal.LocalIdentityStore;
import org.ferry.sdk.internal.contacts.ContactBook;
import org.ferry.sdk.internal.signal.ProtocolStore;
import org.ferry.sdk.internal.store.LocalStore;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.signal.libsignal.protocol.IdentityKeyPair;

/**
 * A contact's identity key changes: every send to them is refused until the user verifies the
 * new safety number, and after that messages flow both ways without a new invitation.
 */
class IdentityChangeTest {
  private static final int SENDS = 20;

  @TempDir Path dir;

  private FerryClient open(String name) {
    return TestClients.openWithNamedKey(dir, name);
  }

  private static Seen receive(FerryClient c) {
    return Seen.receive(c);
  }

  /**
   * {@code name} reinstalls keeping its contacts: a fresh identity key pair, no sessions, and a
   * session restart due for every established contact (what a decryption failure flags), which
   * its client sends, signed by the new key, with its next receive or send.
   */
  private void reinstallKeepingContacts(String name) {
    try (LocalStore store = LocalStore.open(dir.resolve(name).resolve("store"), TestClients.namedKey(name));
        LocalStore.Txn txn = store.begin()) {
      LocalIdentity old = LocalIdentityStore.require(txn);
      IdentityKeyPair fresh = IdentityKeyPair.generate();
      LocalIdentityStore.put(txn, old.toBuilder().setIdentityKeyPair(ByteString.copyFrom(fresh.serialize())).build());
      ProtocolStore protocol = new ProtocolStore(txn, fresh, old.getRegistrationId());
      for (ContactRecord c : ContactBook.all(txn)) {
        protocol.deleteAllSessions(c.getId());
        protocol.deleteSession(new org.signal.libsignal.protocol.SignalProtocolAddress(c.getId(), 1));
        ContactBook.put(txn, c.toBuilder().setResetRequestPending(true).build());
      }
      txn.commit();
    }
  }

  /** Alice invites Bob; one message each way. */
  private static void connect(RunningServer server, FerryClient alice, FerryClient bob) {
    alice.initialize(server.address());
    bob.initialize(server.address());
    bob.acceptInvitation(alice.createInvitation("bob").uri(), "alice");
    bob.send("alice", "hello alice");
    assertEquals(List.of("bob: hello alice"), receive(alice).texts);
    alice.send("bob", "hello bob");
    assertEquals(List.of("alice: hello bob"), receive(bob).texts);
  }

  /** What each of {@code n} sends from {@code from} to {@code label} came to: a reason, or SENT. */
  private static List<String> sendOutcomes(FerryClient from, String label, int n) {
    List<String> outcomes = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      try {
        from.send(label, "attempt " + i);
        outcomes.add("SENT");
      } catch (FerryException e) {
        outcomes.add(e.reason().name());
        assertTrue(e.reason() != FerryException.Reason.IDENTITY_CHANGED
            || e.getMessage().contains("verify"), e.getMessage());
      }
    }
    return outcomes;
  }

  private static String digitsOf(String safetyNumber) {
    return safetyNumber.replace(" ", "");
  }

  @Test
  void afterAKeyChangeEverySendIsRefusedUntilTheNewNumberIsVerifiedThenMessagesFlowBothWaysOnce() throws Exception {
    try (RunningServer server = new RunningServer(dir.resolve("server"))) {
      FerryClient alice = open("alice");
      FerryClient bob = open("bob");
      try {
        connect(server, alice, bob);
        String oldNumber = alice.contact("bob").orElseThrow().safetyNumber().orElseThrow();

        bob.close();
        reinstallKeepingContacts("bob");
        bob = open("bob");
        String newNumber = bob.contact("alice").orElseThrow().safetyNumber().orElseThrow();
        assertNotEquals(oldNumber, newNumber);
        receive(bob); // sends the restart request, signed by the new key

        // Alice's app is told, with the safety number to compare.
        Seen aliceSees = receive(alice);
        assertEquals(List.of(DecryptionFailure.Kind.IDENTITY_CHANGED),
            aliceSees.failures.stream().map(DecryptionFailure::kind).toList(), aliceSees.failures.toString());
        assertEquals(Optional.of(newNumber), aliceSees.failures.get(0).newSafetyNumber());
        assertEquals("bob", aliceSees.failures.get(0).contactLabel());
        Contact pending = alice.contact("bob").orElseThrow();
        assertEquals(Optional.of(newNumber), pending.pendingSafetyNumber());
        assertEquals(Optional.of(oldNumber), pending.safetyNumber());
        assertFalse(pending.verified());

        assertEquals(Collections.nCopies(SENDS, "IDENTITY_CHANGED"), sendOutcomes(alice, "bob", SENDS));

        // Wrong numbers: refused, nothing changes.
        for (String wrong : List.of(digitsOf(oldNumber), "1".repeat(60))) {
          FerryException mismatch = assertThrows(FerryException.class, () -> alice.verify("bob", wrong));
          assertEquals(FerryException.Reason.SAFETY_NUMBER_MISMATCH, mismatch.reason());
          assertFalse(mismatch.getMessage().contains(newNumber), "the message must not give the number away");
        }
        assertEquals(pending, alice.contact("bob").orElseThrow());
        assertEquals(List.of("IDENTITY_CHANGED"), sendOutcomes(alice, "bob", 1));
        Seen bobGotNothing = receive(bob);
        assertEquals(List.of(), bobGotNothing.texts);
        assertEquals(List.of(), bobGotNothing.restarted);

        // The right number: the new key is trusted and the session restarts under it.
        Contact verified = alice.verify("bob", newNumber);
        assertEquals(Optional.of(newNumber), verified.safetyNumber());
        assertEquals(Optional.empty(), verified.pendingSafetyNumber());
        assertTrue(verified.verified());
        Seen bobSees = receive(bob);
        assertEquals(List.of("alice"), bobSees.restarted);
        assertEquals(List.of(), bobSees.failures);
        Seen aliceSeesRestart = receive(alice);
        assertEquals(List.of("bob"), aliceSeesRestart.restarted);
        assertEquals(List.of(), aliceSeesRestart.failures);

        Seen.assertFlowQuietlyBothWays(alice, bob);
        // Exactly once: nothing more comes.
        assertEquals(List.of(), receive(bob).texts);
        assertEquals(List.of(), receive(alice).texts);
        assertEquals(newNumber, bob.contact("alice").orElseThrow().safetyNumber().orElseThrow());
      } finally {
        alice.close();
        bob.close();
      }
    }
  }

  @Test
  void verifyingAnUnchangedContactMarksItVerifiedAndMalformedOrWrongNumbersChangeNothing() throws Exception {
    try (RunningServer server = new RunningServer(dir.resolve("server"));
        FerryClient alice = open("alice");
        FerryClient bob = open("bob")) {
      connect(server, alice, bob);
      Contact before = alice.contact("bob").orElseThrow();
      assertFalse(before.verified());
      String number = before.safetyNumber().orElseThrow();

      for (String malformed : List.of("", "12345", digitsOf(number).substring(1), digitsOf(number) + "0",
          digitsOf(number).replaceFirst("\\d", "x"), number.replace(" ", "-"))) {
        FerryException e = assertThrows(FerryException.class, () -> alice.verify("bob", malformed), malformed);
        assertEquals(FerryException.Reason.INVALID_SAFETY_NUMBER, e.reason(), malformed);
      }
      String wrong = (digitsOf(number).charAt(0) == '9' ? "0" : "9") + digitsOf(number).substring(1);
      assertEquals(FerryException.Reason.SAFETY_NUMBER_MISMATCH,
          assertThrows(FerryException.class, () -> alice.verify("bob", wrong)).reason());
      assertEquals(before, alice.contact("bob").orElseThrow());
      assertEquals(FerryException.Reason.UNKNOWN_CONTACT,
          assertThrows(FerryException.class, () -> alice.verify("carol", number)).reason());

      // As pasted from a chat: line breaks and no-break spaces between the groups.
      Contact verified = alice.verify("bob", " " + number.replace(" ", "\n").replaceFirst("\n", "\u00a0") + "\n");
      assertTrue(verified.verified());
      assertEquals(before.safetyNumber(), verified.safetyNumber());
      assertEquals(Optional.empty(), verified.pendingSafetyNumber());
      assertTrue(alice.contacts().get(0).verified(), "kept");

      // The session was not touched.
      alice.send("bob", "still the same session");
      Seen bobSees = receive(bob);
      assertEquals(List.of("alice: still the same session"), bobSees.texts);
      assertEquals(List.of(), bobSees.restarted);
    }
  }

  /** Runs a {@code ferry client} command in this JVM with {@code stdin} as its standard input. */
  private static Cli.Result cli(Path data, String stdin, String... args) {
    List<String> all = new ArrayList<>(List.of("--data", data.toString()));
    all.addAll(List.of(args));
    StringWriter out = new StringWriter();
    StringWriter err = new StringWriter();
    int exit = ClientMain.run(all.toArray(String[]::new),
        new ByteArrayInputStream(stdin.getBytes(StandardCharsets.UTF_8)),
        new PrintWriter(out, true), new PrintWriter(err, true));
    return new Cli.Result(exit, out.toString(), err.toString());
  }

  @Test
  void theCommandLineShowsTheKeyChangeRefusesToSendAndVerifyUnblocks() throws Exception {
    Path a = dir.resolve("alice-cli");
    try (RunningServer server = new RunningServer(dir.resolve("server"))) {
      Cli.ok(a, "init", "--server", server.address().toString());
      FerryClient bob = open("bob");
      try {
        bob.initialize(server.address());
        bob.acceptInvitation(Cli.ok(a, "invite", "--name", "bob").strip(), "alice");
        bob.send("alice", "hi");
        assertEquals(List.of("bob: hi"), Cli.client(a, "receive", "--timeout", "0.5").outLines());
        List<String> before = Cli.client(a, "contacts").outLines();
        assertEquals(1, before.size());
        assertTrue(before.get(0).endsWith("\tunverified"), before.get(0));

        bob.close();
        reinstallKeepingContacts("bob");
        bob = open("bob");
        String newNumber = bob.contact("alice").orElseThrow().safetyNumber().orElseThrow();
        receive(bob);

        Cli.Result warned = Cli.client(a, "receive", "--timeout", "0.5");
        assertEquals(ClientMain.EXIT_MESSAGES_MAY_BE_LOST, warned.exit(), warned.toString());
        assertTrue(warned.err().contains(newNumber) && warned.err().contains("ferry client verify bob"), warned.err());
        String line = Cli.client(a, "contacts").outLines().get(0);
        assertTrue(line.contains("\tunverified\tKEY CHANGED: new safety number " + newNumber), line);

        Cli.Result refused = Cli.client(a, "send", "bob", "blocked?");
        assertEquals(1, refused.exit(), refused.toString());
        assertTrue(refused.err().contains("verify"), refused.err());

        Cli.Result wrong = Cli.client(a, "verify", "bob", "1".repeat(60));
        assertEquals(1, wrong.exit(), wrong.toString());
        assertTrue(wrong.err().contains("not the safety number of 'bob'"), wrong.err());
        Cli.Result malformed = Cli.client(a, "verify", "bob", "12345");
        assertEquals(1, malformed.exit(), malformed.toString());
        assertTrue(malformed.err().contains("60 digits"), malformed.err());

        Cli.Result verified = cli(a, newNumber + "\n", "verify", "bob", "-");
        assertEquals(0, verified.exit(), verified.toString());
        String after = Cli.client(a, "contacts").outLines().get(0);
        assertTrue(after.endsWith("\t" + newNumber + "\tverified"), after);

        assertEquals(List.of("alice"), receive(bob).restarted);
        Cli.client(a, "receive", "--timeout", "0.5"); // the restart's answer
        Cli.ok(a, "send", "bob", "unblocked");
        assertEquals(List.of("alice: unblocked"), receive(bob).texts);
        bob.send("alice", "and back");
        assertEquals(List.of("bob: and back"), Cli.client(a, "receive", "--timeout", "0.5").outLines());
      } finally {
        bob.close();
      }
    }
  }

  @Test
  void anAlwaysOnAppHearsOfTheKeyChangeAndItsAsyncSendsAreRefusedUntilVerifiedThenDelivered() throws Exception {
    try (RunningServer server = new RunningServer(dir.resolve("server"))) {
      FerryClient alice = open("alice");
      FerryClient bob = open("bob");
      try {
        connect(server, alice, bob);
        java.util.Map<String, String> changed = new java.util.concurrent.ConcurrentHashMap<>();
        List<String> restarted = new java.util.concurrent.CopyOnWriteArrayList<>();
        alice.addListener(new org.ferry.sdk.FerryListener() {
          @Override
          public void onMessage(org.ferry.sdk.ReceivedMessage message) {}

          @Override
          public void onIdentityChanged(String contactLabel, String newSafetyNumber) {
            changed.put(contactLabel, newSafetyNumber);
          }

          @Override
          public void onSessionRestarted(String contactLabel) {
            restarted.add(contactLabel);
          }
        });
        alice.start();

        bob.close();
        reinstallKeepingContacts("bob");
        bob = open("bob");
        String newNumber = bob.contact("alice").orElseThrow().safetyNumber().orElseThrow();
        receive(bob); // sends the restart request, signed by the new key

        org.awaitility.Awaitility.await().atMost(java.time.Duration.ofSeconds(60))
            .until(() -> newNumber.equals(changed.get("bob")));
        for (int i = 0; i < SENDS; i++) {
          FerryException refused = assertThrows(FerryException.class, () -> alice.sendAsync("bob", "blocked"));
          assertEquals(FerryException.Reason.IDENTITY_CHANGED, refused.reason());
        }
        assertEquals(0, alice.pendingSends());

        alice.verify("bob", newNumber);
        receive(bob); // takes the restart, answers it
        org.awaitility.Awaitility.await().atMost(java.time.Duration.ofSeconds(60))
            .until(() -> restarted.contains("bob"));
        String id = alice.sendAsync("bob", "after verify").get(60, java.util.concurrent.TimeUnit.SECONDS);
        Seen bobSees = receive(bob);
        assertEquals(List.of("alice: after verify"), bobSees.texts);
        assertEquals(List.of(), receive(bob).texts);
        assertEquals(32, id.length());
      } finally {
        alice.close();
        bob.close();
      }
    }
  }
}
