package org.ferry.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.stream.Stream;
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
