package org.ferry.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The scenario, by the CLI exactly as written, over real TLS on loopback. */
class CliScenarioTest {
  @TempDir Path dir;

  @Test
  void twoPeopleExchangeMessagesAcrossAServerRestart() throws Exception {
    Path a = dir.resolve("a");
    Path b = dir.resolve("b");
    try (RunningServer server = new RunningServer(dir.resolve("server"))) {
      String address = server.address().toString();
      Cli.ok(a, "init", "--server", address);
      Cli.ok(b, "init", "--server", address);

      String uri = Cli.ok(a, "invite", "--name", "bob").strip();
      assertTrue(uri.startsWith("ferry:invite/") && !uri.contains("\n"), "the URI alone: " + uri);
      assertTrue(uri.length() < 300, uri.length() + " characters");

      Cli.ok(b, "accept", uri, "--name", "alice");
      Cli.ok(b, "send", "alice", "hi");
      server.restart();
      assertEquals(List.of("bob: hi"), Cli.client(a, "receive", "--timeout", "1").outLines());

      Cli.ok(a, "send", "bob", "hello");
      server.restart();
      assertEquals(List.of("alice: hello"), Cli.client(b, "receive", "--timeout", "1").outLines());

      // Nothing is delivered twice.
      assertEquals(List.of(), Cli.client(a, "receive", "--timeout", "1").outLines());
      assertEquals(List.of(), Cli.client(b, "receive", "--timeout", "1").outLines());

      List<String> fromA = Cli.client(a, "contacts").outLines();
      List<String> fromB = Cli.client(b, "contacts").outLines();
      assertEquals(1, fromA.size());
      assertTrue(fromA.get(0).startsWith("bob\testablished\t"), fromA.get(0));
      assertTrue(fromB.get(0).startsWith("alice\testablished\t"), fromB.get(0));
      assertEquals(fromA.get(0).split("\t")[2], fromB.get(0).split("\t")[2], "safety numbers must match");
    }
  }

  /** Alice (in {@code a}) and Bob (in {@code b}) join the server; Bob accepts Alice's invitation. */
  private static void aliceInvitesBob(RunningServer server, Path a, Path b) {
    Cli.ok(a, "init", "--server", server.address().toString());
    Cli.ok(b, "init", "--server", server.address().toString());
    Cli.ok(b, "accept", Cli.ok(a, "invite", "--name", "bob").strip(), "--name", "alice");
  }

  @Test
  void theInviterCanSendRightAfterTheInviteeAcceptedWithoutReceivingFirst() throws Exception {
    Path a = dir.resolve("a");
    Path b = dir.resolve("b");
    try (RunningServer server = new RunningServer(dir.resolve("server"))) {
      aliceInvitesBob(server, a, b);
      Cli.ok(b, "send", "alice", "first");
      // Send finds Bob's acceptance on Alice's server, says so, and keeps his message for her receive.
      Cli.Result sent = Cli.client(a, "send", "bob", "hello");
      assertEquals(0, sent.exit(), sent.toString());
      assertEquals(List.of("bob accepted your invitation", "sent to bob"), sent.errLines());
      assertEquals(List.of("alice: hello"), Cli.client(b, "receive", "--timeout", "1").outLines());
      assertEquals(List.of("bob: first"), Cli.client(a, "receive", "--timeout", "1").outLines());
    }
  }

  @Test
  void manyMessagesArriveInOrderAndEachOnce() throws Exception {
    Path a = dir.resolve("a");
    Path b = dir.resolve("b");
    try (RunningServer server = new RunningServer(dir.resolve("server"))) {
      aliceInvitesBob(server, a, b);
      for (int i = 0; i < 40; i++) {
        Cli.ok(b, "send", "alice", "message " + i);
      }
      List<String> got = Cli.client(a, "receive", "--timeout", "1").outLines();
      assertEquals(40, got.size());
      for (int i = 0; i < 40; i++) {
        assertEquals("bob: message " + i, got.get(i));
      }
    }
  }
}
