package org.ferry.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.ForwardingServerCall;
import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.stream.Stream;
import org.ferry.proto.v1.ReceiveResponse;
import org.ferry.sdk.DecryptionFailure;
import org.ferry.sdk.FerryClient;
import org.ferry.sdk.FerryException;
import org.ferry.sdk.ReceivedMessage;
import org.ferry.sdk.cli.ClientMain;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Sessions that fall out of step heal themselves, and nobody loses a message without a word. */
class SessionHealingTest {
  @TempDir Path dir;

  /** Alice (in {@code a}) and Bob (in {@code b}) join the server; Bob accepts Alice's invitation. */
  private static void connect(RunningServer server, Path a, Path b) {
    Cli.ok(a, "init", "--server", server.address().toString());
    Cli.ok(b, "init", "--server", server.address().toString());
    Cli.ok(b, "accept", Cli.ok(a, "invite", "--name", "bob").strip(), "--name", "alice");
  }

  private static Cli.Result receive(Path who) {
    return Cli.client(who, "receive", "--timeout", "0.5");
  }

  @Test
  void aDataDirectoryRestoredFromACopyHealsAndBothSidesAreWarned() throws Exception {
    try (RunningServer server = new RunningServer(dir.resolve("server"))) {
      Path a = dir.resolve("alice");
      Path b = dir.resolve("bob");
      connect(server, a, b);
      Cli.ok(b, "send", "alice", "hello alice");
      assertEquals(List.of("bob: hello alice"), receive(a).outLines());
      Cli.ok(a, "send", "bob", "hello bob");
      assertEquals(List.of("alice: hello bob"), receive(b).outLines());

      Path copy = dir.resolve("alice-backup");
      copyTree(a, copy);
      // Life goes on after the backup: both ratchets move.
      Cli.ok(a, "send", "bob", "after the backup");
      assertEquals(List.of("alice: after the backup"), receive(b).outLines());
      Cli.ok(b, "send", "alice", "still here");
      assertEquals(List.of("bob: still here"), receive(a).outLines());

      // Alice's disk dies; she restores the backup.
      deleteTree(a);
      copyTree(copy, a);

      Cli.ok(a, "send", "bob", "from the restored copy");
      // Bob cannot read it (its message key was used before the restore): he is told so, and
      // his client asks Alice's for a fresh session.
      Cli.Result bobSees = receive(b);
      assertEquals(ClientMain.EXIT_MESSAGES_MAY_BE_LOST, bobSees.exit(), bobSees.toString());
      assertEquals(List.of(), bobSees.outLines());
      assertEquals(1, bobSees.errLines().size(), bobSees.err());
      assertTrue(bobSees.err().contains("a message from alice could not be decrypted"), bobSees.err());
      // Alice's client restarts the session and tells her that messages may have been lost.
      Cli.Result aliceSees = receive(a);
      assertEquals(ClientMain.EXIT_MESSAGES_MAY_BE_LOST, aliceSees.exit(), aliceSees.toString());
      assertTrue(aliceSees.err().contains("the session with bob was restarted"), aliceSees.err());
      // Bob hears that the restart is done.
      Cli.Result bobSeesAgain = receive(b);
      assertEquals(ClientMain.EXIT_MESSAGES_MAY_BE_LOST, bobSeesAgain.exit(), bobSeesAgain.toString());
      assertTrue(bobSeesAgain.err().contains("the session with alice was restarted"), bobSeesAgain.err());

      // Messages flow again both ways.
      Cli.ok(a, "send", "bob", "healed?");
      Cli.Result healed = receive(b);
      assertEquals(List.of("alice: healed?"), healed.outLines());
      assertEquals(0, healed.exit(), healed.toString());
      Cli.ok(b, "send", "alice", "healed!");
      Cli.Result back = receive(a);
      assertEquals(List.of("bob: healed!"), back.outLines());
      assertEquals(0, back.exit(), back.toString());
    }
  }

  @Test
  void manyRefusedSendsToAFullMailboxDoNotBreakDecryptionForTheContact() throws Exception {
    // Two envelopes fit: the invitation's handshake reply, then one message.
    try (RunningServer server = RunningServer.configured(dir.resolve("server"), b -> b.mailboxQuota(2, 1 << 20));
        FerryClient alice = TestClients.open(dir, "alice");
        FerryClient bob = TestClients.open(dir, "bob")) {
      alice.initialize(server.address());
      bob.initialize(server.address());
      bob.acceptInvitation(alice.createInvitation("bob").uri(), "alice");
      bob.send("alice", "one");
      // More refused sends than libsignal lets a receiver skip (25,000).
      for (int i = 0; i < 25_001; i++) {
        FerryException full = assertThrows(FerryException.class, () -> bob.send("alice", "refused"));
        assertEquals(FerryException.Reason.RECIPIENT_FULL, full.reason());
      }
      List<ReceivedMessage> got = new ArrayList<>();
      alice.receive(Duration.ofMillis(500), got::add);
      assertEquals(List.of("one"), got.stream().map(ReceivedMessage::text).toList());
      bob.send("alice", "after the refusals");
      got.clear();
      alice.receive(Duration.ofMillis(500), got::add);
      assertEquals(List.of("after the refusals"), got.stream().map(ReceivedMessage::text).toList());
    }
  }

  private static Seen receive(FerryClient c) {
    return Seen.receive(c);
  }

  private FerryClient open(String name) {
    return TestClients.openWithNamedKey(dir, name);
  }

  @Test
  void whenTheRestoredSideCannotReadItsContactItAsksForTheRestartAndBothAreTold() throws Exception {
    try (RunningServer server = new RunningServer(dir.resolve("server"))) {
      try (FerryClient bob = open("bob"); FerryClient alice = restoredAliceAfterTwoTurns(server, bob)) {
        bob.send("alice", "to the restored alice");
        Seen aliceSees = receive(alice);
        assertEquals(List.of(), aliceSees.texts);
        assertEquals(1, aliceSees.failures.size(), aliceSees.failures.toString());
        assertEquals("bob", aliceSees.failures.get(0).contactLabel());
        assertEquals(DecryptionFailure.Kind.OUT_OF_STEP, aliceSees.failures.get(0).kind());
        Seen bobSees = receive(bob);
        assertEquals(List.of("alice"), bobSees.restarted);
        assertEquals(List.of(), bobSees.failures);
        Seen aliceSeesAgain = receive(alice);
        assertEquals(List.of("bob"), aliceSeesAgain.restarted);

        Seen.assertFlowQuietlyBothWays(alice, bob);
      }
    }
  }

  /** Alice restored from a backup taken before two full turns with Bob (so neither reads the other). */
  private FerryClient restoredAliceAfterTwoTurns(RunningServer server, FerryClient bob) throws IOException {
    FerryClient alice = open("alice");
    alice.initialize(server.address());
    bob.initialize(server.address());
    bob.acceptInvitation(alice.createInvitation("bob").uri(), "alice");
    bob.send("alice", "hello alice");
    assertEquals(List.of("bob: hello alice"), receive(alice).texts);
    alice.close();
    copyTree(dir.resolve("alice"), dir.resolve("alice-backup"));
    alice = open("alice");
    for (int turn = 0; turn < 2; turn++) {
      alice.send("bob", "turn " + turn);
      assertEquals(List.of("alice: turn " + turn), receive(bob).texts);
      bob.send("alice", "reply " + turn);
      assertEquals(List.of("bob: reply " + turn), receive(alice).texts);
    }
    alice.close();
    deleteTree(dir.resolve("alice"));
    copyTree(dir.resolve("alice-backup"), dir.resolve("alice"));
    return open("alice");
  }

  @Test
  void messagesOnTheOldSessionWhileARestartIsUnderWayAreReportedAndStartNoSecondRestart() throws Exception {
    try (RunningServer server = new RunningServer(dir.resolve("server"));
        FerryClient bob = open("bob")) {
      try (FerryClient alice = restoredAliceAfterTwoTurns(server, bob)) {
        bob.send("alice", "to the restored alice");
        assertEquals(DecryptionFailure.Kind.OUT_OF_STEP, receive(alice).failures.get(0).kind());
        // Alice's request is on its way; she writes on her old session before the answer.
        alice.send("bob", "before the answer");
        Seen bobSees = receive(bob);
        assertEquals(List.of("alice"), bobSees.restarted);
        assertEquals(List.of("alice"), bobSees.failures.stream().map(DecryptionFailure::contactLabel).toList());
        assertEquals(List.of("bob"), receive(alice).restarted);
        // One restart was enough: nothing more to report, and messages flow.
        Seen.assertFlowQuietlyBothWays(alice, bob);
        assertEquals(List.of(), receive(bob).restarted);
      }
    }
  }

  /** Plays a hostile server: every delivery comes again under a new envelope id. */
  private static final class ReplayUnderNewIds implements ServerInterceptor {
    @Override
    public <Q, R> ServerCall.Listener<Q> interceptCall(ServerCall<Q, R> call, Metadata h, ServerCallHandler<Q, R> next) {
      return next.startCall(new ForwardingServerCall.SimpleForwardingServerCall<>(call) {
        @Override
        @SuppressWarnings("unchecked")
        public void sendMessage(R message) {
          super.sendMessage(message);
          if (message instanceof ReceiveResponse r && r.hasDelivery()) {
            byte[] otherId = new byte[16];
            new java.security.SecureRandom().nextBytes(otherId);
            ReceiveResponse.Builder replay = r.toBuilder();
            replay.getDeliveryBuilder().getEnvelopeBuilder().setId(com.google.protobuf.ByteString.copyFrom(otherId));
            super.sendMessage((R) replay.build());
          }
        }
      }, h);
    }
  }

  @Test
  void anEnvelopeReplayedUnderANewIdIsDroppedWithoutAWarningOrARestart() throws Exception {
    try (RunningServer server = new RunningServer(dir.resolve("server"), java.time.Clock.systemUTC(),
            new ReplayUnderNewIds());
        FerryClient alice = open("alice");
        FerryClient bob = open("bob")) {
      alice.initialize(server.address());
      bob.initialize(server.address());
      bob.acceptInvitation(alice.createInvitation("bob").uri(), "alice");
      bob.send("alice", "once");
      Seen aliceSees = receive(alice);
      assertEquals(List.of("bob: once"), aliceSees.texts);
      assertEquals(List.of(), aliceSees.failures);
      alice.send("bob", "back");
      Seen bobSees = receive(bob);
      assertEquals(List.of("alice: back"), bobSees.texts);
      assertEquals(List.of(), bobSees.restarted);
      assertEquals(List.of(), receive(alice).restarted);
    }
  }

  private static void copyTree(Path from, Path to) throws IOException {
    try (Stream<Path> all = Files.walk(from)) {
      for (Path p : (Iterable<Path>) all::iterator) {
        Path target = to.resolve(from.relativize(p).toString());
        if (Files.isDirectory(p)) {
          Files.createDirectories(target);
        } else if (!p.getFileName().toString().equals(".lock")) {
          Files.copy(p, target, StandardCopyOption.COPY_ATTRIBUTES);
        }
      }
    }
  }

  private static void deleteTree(Path root) throws IOException {
    try (Stream<Path> all = Files.walk(root)) {
      for (Path p : (Iterable<Path>) all.sorted(Comparator.reverseOrder())::iterator) {
        Files.delete(p);
      }
    }
  }
}
