package org.ferry.it;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code ferry client daemon} as a real process over a real server: the CLI through it prints
 * what it prints in-process, bad input on its socket gets JSON-RPC errors while others are
 * served, one daemon per data directory, and what it leaves behind.
 */
class DaemonTest {
  @TempDir Path dir;

  /** Two users: Alice in {@code a}, Bob in {@code b}, Bob accepted Alice's invitation. */
  private static void pair(RunningServer server, Path a, Path b) {
    Cli.aliceInvitesBob(server, a, b);
  }

  /** A command's outcome with the data directory's path replaced, to compare two users' runs. */
  private static String outcome(Path data, String... args) {
    Cli.Result r = Cli.client(data, args);
    return (r.exit() + "\n" + r.out() + "\n" + r.err()).replace(data.toString(), "DATA");
  }

  @Test
  void theCliThroughTheDaemonPrintsWhatItPrintsInProcess() throws Exception {
    Path inProcess = dir.resolve("a1");
    Path viaDaemon = dir.resolve("a2");
    Path b1 = dir.resolve("b1");
    Path b2 = dir.resolve("b2");
    try (RunningServer server = new RunningServer(dir.resolve("server"))) {
      pair(server, inProcess, b1);
      pair(server, viaDaemon, b2);
      try (DaemonProcess daemon = DaemonProcess.start(viaDaemon, dir.resolve("logs"))) {
        Cli.ok(b1, "send", "alice", "hi there");
        Cli.ok(b2, "send", "alice", "hi there");
        List<String[]> commands = List.of(
            new String[] {"receive", "--timeout", "1"},
            new String[] {"send", "bob", "hello"},
            new String[] {"send", "nobody", "hello"},
            new String[] {"send", "bob"},
            new String[] {"send", "bob", "--file", "no-such-file"},
            new String[] {"receive", "--timeout", "0", "--max", "0"},
            new String[] {"contacts", "rename", "bob", "robert"},
            new String[] {"contacts", "rename", "nobody", "x"},
            new String[] {"bridges", "list"},
            new String[] {"bridges", "add", "not a bridge line"},
            new String[] {"frobnicate"});
        for (String[] c : commands) {
          assertEquals(outcome(inProcess, c), outcome(viaDaemon, c), "ferry client " + String.join(" ", c));
        }
        // Output that differs per user (safety numbers, ids) has the same shape.
        assertEquals(Cli.client(inProcess, "contacts").out().replaceAll("[0-9 ]{60,}", "N"),
            Cli.client(viaDaemon, "contacts").out().replaceAll("[0-9 ]{60,}", "N"));
        Cli.Result json = Cli.client(viaDaemon, "send", "robert", "as json", "--json");
        assertEquals(0, json.exit(), json.toString());
        JsonObject sent = JsonParser.parseString(json.out().strip()).getAsJsonObject();
        assertEquals("robert", sent.get("contact").getAsString());
        assertTrue(sent.get("messageId").getAsString().matches("[0-9a-f]+"), json.out());
        JsonObject got = JsonParser.parseString(Cli.ok(b2, "receive", "--timeout", "1", "--json").lines()
            .reduce((x, y) -> y).orElseThrow()).getAsJsonObject();
        assertEquals("as json", got.get("text").getAsString());
        assertEquals(sent.get("messageId").getAsString(), got.get("messageId").getAsString());
        assertEquals(Cli.client(inProcess, "contacts", "--json").out().replaceAll("\"[0-9 ]{60,}\"", "N")
                .replaceAll("\"lastReceived\":\"[^\"]+\"", "T"),
            Cli.client(viaDaemon, "contacts", "--json").out().replaceAll("\"[0-9 ]{60,}\"", "N")
                .replaceAll("\"lastReceived\":\"[^\"]+\"", "T"));
        // Commands that need the store to themselves say so instead of waiting for the lock.
        Cli.Result init = Cli.client(viaDaemon, "passphrase", "remove");
        assertEquals(1, init.exit());
        assertTrue(init.err().contains("stop the daemon first"), init.err());
      }
    }
  }

  @Test
  void anInvitationMadeThroughTheDaemonIsReportedAcceptedByTheNextReceive() throws Exception {
    Path a = dir.resolve("a");
    Path b = dir.resolve("b");
    try (RunningServer server = new RunningServer(dir.resolve("server"))) {
      Cli.ok(a, "init", "--server", server.address().toString());
      Cli.ok(b, "init", "--server", server.address().toString());
      try (DaemonProcess daemon = DaemonProcess.start(a, dir.resolve("logs"))) {
        Cli.ok(b, "accept", Cli.ok(a, "invite", "--name", "bob").strip(), "--name", "alice");
        Cli.ok(b, "send", "alice", "hi");
        Cli.Result r = Cli.client(a, "receive", "--timeout", "1");
        assertEquals(List.of("bob: hi"), r.outLines(), r.toString());
        assertEquals(List.of("bob accepted your invitation"), r.errLines());
      }
    }
  }

  @Test
  void badInputOnTheSocketGetsJsonRpcErrorsWhileAnotherCallerIsServed() throws Exception {
    Path a = dir.resolve("a");
    try (RunningServer server = new RunningServer(dir.resolve("server"))) {
      pair(server, a, dir.resolve("b"));
      try (DaemonProcess daemon = DaemonProcess.start(a, dir.resolve("logs"));
           RpcConnection other = new RpcConnection(daemon.socket)) {
        String contacts = "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"contacts\"}";
        try (RpcConnection bad = new RpcConnection(daemon.socket)) {
          assertError(-32700, bad.call("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":"));
          assertError(-32700, bad.call("{'jsonrpc':'2.0','id':1,'method':'contacts'}"));
          assertError(-32700, bad.call(contacts + " trailing"));
          bad.sendRaw(new byte[] {'"', (byte) 0xff, '"', '\n'});
          assertError(-32700, bad.next().orElseThrow());
          assertError(-32600, bad.call("[" + contacts + "]"));
          assertError(-32600, bad.call("{\"id\":1,\"method\":\"contacts\"}"));
          assertError(-32600, bad.call("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":5}"));
          assertError(-32601, bad.call("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"nosuch\"}"));
          assertError(-32601, bad.call("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"init\"}"));
          assertError(-32602, bad.call("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"send\",\"params\":{\"label\":5,\"text\":\"x\"}}"));
          assertError(-32602, bad.call("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"send\",\"params\":{\"label\":\"bob\"}}"));
          assertError(-32602, bad.call("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"send\",\"params\":[\"bob\",\"x\"]}"));
          assertError(-32602, bad.call("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"receive\",\"params\":{\"max\":1.5}}"));
          assertError(-32602, bad.call("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"cli\",\"params\":{\"args\":[1],\"cwd\":\"/\"}}"));
          // A FerryException: its reason's code and message.
          JsonObject unknown = bad.call("{\"jsonrpc\":\"2.0\",\"id\":\"x\",\"method\":\"send\",\"params\":{\"label\":\"zed\",\"text\":\"x\"}}");
          assertError(1008, unknown);
          assertEquals("UNKNOWN_CONTACT", unknown.getAsJsonObject("error").getAsJsonObject("data").get("reason").getAsString());
          assertEquals("\"x\"", unknown.get("id").toString());
          // A notification gets no answer: the next answer is the next request's.
          bad.send("{\"jsonrpc\":\"2.0\",\"method\":\"nosuch\"}");
          assertEquals(7, bad.call(contacts).get("id").getAsInt());
          assertEquals(1, other.call(contacts).getAsJsonArray("result").size(), "the other caller is served");
          // Over 1 MiB on one line: an error, then the connection is closed.
          bad.sendRaw(("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"send\",\"params\":{\"label\":\"bob\",\"text\":\""
              + "x".repeat((1 << 20) + 10) + "\"}}\n").getBytes(StandardCharsets.US_ASCII));
          assertError(-32600, bad.next().orElseThrow());
          assertEquals(Optional.empty(), bad.next(), "the connection must be closed");
        }
        assertEquals(1, other.call(contacts).getAsJsonArray("result").size(), "the other caller is still served");
        // Nothing of the above reached the store: Bob got nothing.
        assertEquals(List.of(), Cli.client(dir.resolve("b"), "receive", "--timeout", "1").outLines());
        String log = daemon.stderrText();
        assertFalse(log.contains("xxxxxxxxxx") || log.contains("Exception"), log);
      }
    }
  }

  private static void assertError(int code, JsonObject answer) {
    assertTrue(answer.has("error"), "expected error " + code + ": " + answer);
    assertEquals(code, answer.getAsJsonObject("error").get("code").getAsInt(), answer.toString());
    assertEquals("2.0", answer.get("jsonrpc").getAsString());
  }

  @Test
  void aCallerWhoLeavesDuringAReceiveLosesNoMessage() throws Exception {
    Path a = dir.resolve("a");
    Path b = dir.resolve("b");
    try (RunningServer server = new RunningServer(dir.resolve("server"))) {
      pair(server, a, b);
      try (DaemonProcess daemon = DaemonProcess.start(a, dir.resolve("logs"))) {
        for (int round = 0; round < 3; round++) {
          try (RpcConnection leaving = new RpcConnection(daemon.socket)) {
            leaving.send("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"receive\",\"params\":{\"timeoutSeconds\":3600}}");
            Cli.ok(b, "send", "alice", "message " + round);
          }
        }
        List<String> got = new ArrayList<>();
        await().atMost(Duration.ofSeconds(60)).untilAsserted(() -> {
          got.addAll(Cli.client(a, "receive", "--timeout", "1").outLines());
          assertEquals(3, got.size(), got.toString());
        });
        // Each once, in order, whichever of them the departed callers' receives had taken.
        assertEquals(List.of("bob: message 0", "bob: message 1", "bob: message 2"), got);
      }
    }
  }

  @Test
  void subscribersGetEventsAsNotifications() throws Exception {
    Path a = dir.resolve("a");
    Path b = dir.resolve("b");
    try (RunningServer server = new RunningServer(dir.resolve("server"))) {
      pair(server, a, b);
      try (DaemonProcess daemon = DaemonProcess.start(a, dir.resolve("logs"));
           RpcConnection events = new RpcConnection(daemon.socket)) {
        assertTrue(events.call("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"subscribe\"}").has("result"));
        Cli.ok(b, "send", "alice", "pushed");
        JsonObject message;
        do {
          message = events.next().orElseThrow().getAsJsonObject("params");
        } while (!"message".equals(message.get("type").getAsString()));
        assertEquals("bob", message.get("contact").getAsString());
        assertEquals("pushed", message.get("text").getAsString());
        events.send("{\"jsonrpc\":\"2.0\",\"method\":\"ack\",\"params\":{\"ackId\":" + message.get("ackId") + "}}");
        // Handed to the subscriber: not handed again.
        assertEquals(List.of(), Cli.client(a, "receive", "--timeout", "1").outLines());
        assertFalse(daemon.stderrText().contains("pushed"), "message text in the daemon's log");

        // An async send: queued at once, its outcome an event with the message id Bob sees.
        events.send(
            "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"sendAsync\",\"params\":{\"label\":\"bob\",\"text\":\"queued\"}}");
        // The answer and the event may come in either order.
        JsonObject queued = null;
        JsonObject accepted = null;
        while (queued == null || accepted == null) {
          JsonObject m = events.next().orElseThrow();
          if (!m.has("method")) {
            queued = m;
          } else if ("sendAccepted".equals(m.getAsJsonObject("params").get("type").getAsString())) {
            accepted = m.getAsJsonObject("params");
          }
        }
        assertTrue(queued.getAsJsonObject("result").get("queued").getAsBoolean(), queued.toString());
        assertEquals("bob", accepted.get("contact").getAsString());
        List<String> atBob = Cli.client(b, "receive", "--json", "--timeout", "2").outLines();
        assertEquals(1, atBob.size(), atBob.toString());
        assertTrue(atBob.get(0).contains(accepted.get("messageId").getAsString()), atBob + " vs " + accepted);
      }
    }
  }

  @Test
  void oneDaemonPerDataDirectoryWithAnOwnerOnlySocketThatOutlivesNoDaemon() throws Exception {
    Path a = dir.resolve("a");
    try (RunningServer server = new RunningServer(dir.resolve("server"))) {
      pair(server, a, dir.resolve("b"));
      DaemonProcess first = DaemonProcess.start(a, dir.resolve("logs"));
      assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(first.socket)));
      DaemonProcess second = DaemonProcess.launch(a, dir.resolve("logs"));
      assertEquals(1, second.awaitExit());
      assertEquals("ferry client: a Ferry daemon is running for " + a + " already", second.stderrText().strip());
      assertTrue(first.answers(), "the first keeps serving");

      first.stop();
      assertFalse(Files.exists(first.socket), "SIGTERM removes the socket");

      // A daemon killed outright leaves its socket; commands then run in-process, and the
      // next daemon starts all the same.
      DaemonProcess killed = DaemonProcess.start(a, dir.resolve("logs"));
      killed.kill();
      assertTrue(Files.exists(killed.socket));
      assertEquals(0, Cli.client(a, "contacts").exit());
      try (DaemonProcess next = DaemonProcess.start(a, dir.resolve("logs"))) {
        assertEquals(0, Cli.client(a, "contacts").exit());
      }
    }
  }

  @Test
  void twoDaemonsStartedAtOnceLeaveOneServingAndTheOtherRefusing() throws Exception {
    Path a = dir.resolve("a");
    try (RunningServer server = new RunningServer(dir.resolve("server"))) {
      pair(server, a, dir.resolve("b"));
      for (int trial = 0; trial < 3; trial++) {
        DaemonProcess one = DaemonProcess.launch(a, dir.resolve("logs"));
        DaemonProcess two = DaemonProcess.launch(a, dir.resolve("logs"));
        await().atMost(Duration.ofSeconds(60)).until(() -> !one.process.isAlive() || !two.process.isAlive());
        DaemonProcess loser = one.process.isAlive() ? two : one;
        DaemonProcess winner = loser == one ? two : one;
        assertNotEquals(0, loser.awaitExit());
        String err = loser.stderrText().strip();
        assertEquals(1, err.lines().count(), err);
        assertTrue(err.contains(a.toString()), err);
        await().atMost(Duration.ofSeconds(60)).until(winner::answers);
        winner.stop();
      }
    }
  }

  /** Every message Alice's next receives print, until {@code n} came; each must come once. */
  private static List<String> receiveAll(Path a, int n) {
    List<String> got = new ArrayList<>();
    await().atMost(Duration.ofSeconds(90)).untilAsserted(() -> {
      got.addAll(Cli.client(a, "receive", "--timeout", "1").outLines());
      assertTrue(got.size() >= n, got.toString());
    });
    return got;
  }

  private static final List<String> THREE = List.of("bob: m0", "bob: m1", "bob: m2");

  private static void bobSendsThree(Path b) {
    for (int i = 0; i < 3; i++) {
      Cli.ok(b, "send", "alice", "m" + i);
    }
  }

  /** What a caller of Alice's daemon does while messages wait (Bob sends three before or during it). */
  private interface Caller {
    void run(DaemonProcess daemon, Path b) throws Exception;
  }

  /**
   * Alice and Bob paired, Alice's daemon running, {@code caller} takes Bob's three messages
   * without confirming it has them: Alice's next receives then get all three, once each.
   */
  private void leavesEveryMessageForTheNextReceive(Caller caller) throws Exception {
    withAlicesDaemon((daemon, b) -> {
      caller.run(daemon, b);
      assertEquals(THREE, receiveAll(daemon.data, 3));
    });
  }

  /** Alice (in {@code a}) and Bob (in {@code b}) paired, and Alice's daemon running for {@code caller}. */
  private void withAlicesDaemon(Caller caller) throws Exception {
    Path a = dir.resolve("a");
    Path b = dir.resolve("b");
    try (RunningServer server = new RunningServer(dir.resolve("server"))) {
      pair(server, a, b);
      try (DaemonProcess daemon = DaemonProcess.start(a, dir.resolve("logs"))) {
        caller.run(daemon, b);
      }
    }
  }

  @Test
  void aReceiveWhoseOutputCannotBeWrittenLeavesEveryMessageForTheNextReceive() throws Exception {
    leavesEveryMessageForTheNextReceive((daemon, b) -> {
      bobSendsThree(b);
      // As `ferry client receive > /dev/full`: every write to stdout fails.
      java.io.Writer full = new java.io.Writer() {
        @Override
        public void write(char[] cbuf, int off, int len) throws java.io.IOException {
          throw new java.io.IOException("No space left on device");
        }

        @Override
        public void flush() throws java.io.IOException {
          throw new java.io.IOException("No space left on device");
        }

        @Override
        public void close() {}
      };
      java.io.StringWriter err = new java.io.StringWriter();
      int exit = org.ferry.sdk.cli.ClientMain.run(new String[] {"--data", daemon.data.toString(), "receive",
          "--timeout", "2"}, java.io.InputStream.nullInputStream(), new java.io.PrintWriter(full),
          new java.io.PrintWriter(err, true));
      assertEquals(1, exit, err.toString());
    });
  }

  @Test
  void aJsonRpcReceiverWhoLeavesWithoutAcknowledgingLosesNoMessage() throws Exception {
    leavesEveryMessageForTheNextReceive((daemon, b) -> {
      bobSendsThree(b);
      try (RpcConnection leaving = new RpcConnection(daemon.socket)) {
        leaving.send("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"receive\",\"params\":{\"timeoutSeconds\":30}}");
        JsonObject first = leaving.next().orElseThrow();
        assertEquals("message", first.get("method").getAsString(), first.toString());
        // Gone without acknowledging it.
      }
    });
  }

  @Test
  void aSubscriberWhoLeavesWithoutAcknowledgingLosesNoMessage() throws Exception {
    leavesEveryMessageForTheNextReceive((daemon, b) -> {
      try (RpcConnection events = new RpcConnection(daemon.socket)) {
        assertTrue(events.call("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"subscribe\"}").has("result"));
        bobSendsThree(b);
        JsonObject event;
        do {
          event = events.next().orElseThrow().getAsJsonObject("params");
        } while (!"message".equals(event.get("type").getAsString()));
        // Gone without acknowledging it.
      }
    });
  }

  @Test
  void aCommandWithAnotherProxyThanTheDaemonsIsRefused() throws Exception {
    withAlicesDaemon((daemon, b) -> {
      Path a = daemon.data;
      for (String[] args : List.of(new String[] {"--proxy", "socks5://127.0.0.1:9", "contacts"},
          new String[] {"contacts", "--proxy=socks5://127.0.0.1:9"})) {
        Cli.Result r = Cli.client(a, args);
        assertEquals(2, r.exit(), r.toString());
        assertEquals(List.of("ferry client: the daemon for " + a + " runs without a proxy; stop it, or run "
            + "the command without --proxy and FERRY_PROXY"), r.errLines());
        assertEquals("", r.out());
      }
      // FERRY_PROXY, as the launcher's fast path passes it on.
      ProcessBuilder fastPath = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
          "-cp", System.getProperty("java.class.path"), org.ferry.sdk.cli.daemon.DaemonCli.class.getName(),
          "--data", a.toString(), "contacts").redirectErrorStream(true);
      fastPath.environment().put("FERRY_PROXY", "socks5://127.0.0.1:9");
      Process p = fastPath.start();
      String output = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
      assertEquals(2, p.waitFor(), output);
      assertTrue(output.startsWith("ferry client: the daemon for " + a + " runs without a proxy"), output);
      assertEquals(0, Cli.client(a, "contacts").exit());
    });
  }

  @Test
  void idleConnectionsDoNotLockTheCommandLineOut() throws Exception {
    withAlicesDaemon((daemon, b) -> {
      Path a = daemon.data;
      List<RpcConnection> idle = new ArrayList<>();
      try {
        for (int i = 0; i < 40; i++) {
          idle.add(new RpcConnection(daemon.socket));
        }
        for (int i = 0; i < 3; i++) {
          Cli.Result r = Cli.client(a, "contacts");
          assertEquals(0, r.exit(), r.toString());
        }
      } finally {
        for (RpcConnection c : idle) {
          c.close();
        }
      }
      // Connections all busy (subscribed): a new one is told so, and the CLI says nothing was done.
      List<RpcConnection> busy = new ArrayList<>();
      try {
        for (int i = 0; i < 32; i++) {
          RpcConnection c = new RpcConnection(daemon.socket);
          busy.add(c);
          assertTrue(c.call("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"subscribe\"}").has("result"));
        }
        RpcConnection over = new RpcConnection(daemon.socket);
        busy.add(over);
        JsonObject refusal = over.next().orElseThrow();
        assertError(-32000, refusal);
        assertEquals("daemon busy: too many connections", refusal.getAsJsonObject("error").get("message").getAsString());
        Cli.Result r = Cli.client(a, "contacts");
        assertEquals(1, r.exit(), r.toString());
        assertEquals(List.of("ferry client: the daemon at " + daemon.socket + " is busy (too many connections); "
            + "nothing was done: try again later"), r.errLines());
      } finally {
        for (RpcConnection c : busy) {
          c.close();
        }
      }
      await().atMost(Duration.ofSeconds(60)).until(() -> Cli.client(a, "contacts").exit() == 0);
      long lines = daemon.stderrText().lines().count();
      assertTrue(lines <= 3, daemon.stderrText());
    });
  }

  @Test
  void withoutADaemonTheFastPathStepsAside() throws Exception {
    Path a = dir.resolve("a");
    List<String> command = new ArrayList<>(List.of(
        Path.of(System.getProperty("java.home"), "bin", "java").toString(),
        "-cp", System.getProperty("java.class.path"),
        org.ferry.sdk.cli.daemon.DaemonCli.class.getName(), "--data", a.toString(), "contacts"));
    Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
    String output = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertEquals(org.ferry.sdk.cli.daemon.DaemonCli.NO_DAEMON, p.waitFor());
    assertEquals("", output);
  }
}
