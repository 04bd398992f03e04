package org.ferry.it;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.UUID;
import java.util.regex.Pattern;
import org.ferry.it.censor.Censor;
import org.ferry.proto.ServerAddress;
import org.ferry.sdk.FerryClient;
import org.ferry.sdk.FerryException;
import org.ferry.sdk.ReceivedMessage;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** What a busy server and relay write to their logs at debug level: one line per event, nothing about users. */
class ServerLogsTest {
  private static final Duration BOUND = Duration.ofSeconds(60);
  /** slf4j-simple's line as the server configures it: time, level, logger, message. */
  private static final Pattern LINE =
      Pattern.compile("\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z (ERROR|WARN|INFO|DEBUG|TRACE) [\\w.$]+ - .*");

  @TempDir Path dir;

  @Test
  void aBusyServerAndRelayAtDebugLevelLogOneLinePerEventAndNoAddressIdOrContent() throws Exception {
    Path data = dir.resolve("server");
    Set<Integer> clientPorts = new HashSet<>();
    List<String> texts = new ArrayList<>();
    List<String> invitations = new ArrayList<>();
    String log;
    int web = ExternalProcess.freePort();
    try (FerryProcess server = FerryProcess.server(dir.resolve("run"), "--data", data.toString(),
            "--listen", "127.0.0.1:0", "--log-level", "debug", "--mailbox-max-envelopes", "20",
            "--carriers", "ws,poll", "--metrics-listen", "127.0.0.1:0");
        FerryProcess relay = FerryProcess.relay(dir.resolve("rrun"), "--data", dir.resolve("relay").toString(),
            "--listen", "127.0.0.1:" + web, "--upstream", "127.0.0.1:" + server.address().port(),
            "--carriers", "ws,poll", "--log-level", "debug");
        Censor direct = Censor.start(new InetSocketAddress("127.0.0.1", server.address().port()))
            .block(Censor.Rule.BLOCK_PORT);
        FerryClient alice = TestClients.open(dir, "alice");
        FerryClient bob = TestClients.open(dir, "bob");
        FerryClient carol = TestClients.open(dir, "carol");
        FerryClient stranger = TestClients.open(dir, "stranger")) {
      int port = server.address().port();
      for (FerryClient c : List.of(alice, bob)) {
        c.initialize(server.address());
      }
      // Carol reaches the server only through the relay.
      carol.initialize(new ServerAddress("127.0.0.1", direct.port(), server.address().fingerprint()), "",
          relay.out().lines().filter(l -> l.startsWith("bridge: ")).map(l -> l.substring("bridge: ".length())).toList());
      for (FerryClient c : List.of(bob, carol)) {
        String uri = alice.createInvitation(c == bob ? "bob" : "carol").uri();
        invitations.add(uri);
        c.acceptInvitation(uri, "alice");
      }
      // Traffic both ways, with receives, acks and redeliveries in between.
      for (int round = 0; round < 3; round++) {
        for (FerryClient c : List.of(bob, carol)) {
          for (int i = 0; i < 4; i++) {
            String text = "text-" + UUID.randomUUID();
            texts.add(text);
            c.send("alice", text);
          }
        }
        clientPorts.addAll(ServerTraces.clientPorts(port));
        clientPorts.addAll(ServerTraces.clientPorts(web));
        List<ReceivedMessage> got = new ArrayList<>();
        int expected = 8;
        await().atMost(BOUND).until(() -> {
          alice.receive(Duration.ofMillis(200), got::add);
          return got.size() >= expected;
        });
        String reply = "reply-" + UUID.randomUUID();
        texts.add(reply);
        alice.send("bob", reply);
        clientPorts.addAll(ServerTraces.clientPorts(port));
      }
      bob.receive(Duration.ofMillis(500), m -> { });
      // Refusals: a full mailbox, a wrong invitation, a used one.
      assertThrows(FerryException.class, () -> {
        for (int i = 0; i < 30; i++) {
          String text = "filler-" + UUID.randomUUID();
          texts.add(text);
          carol.send("alice", text);
        }
      });
      stranger.initialize(server.address());
      assertThrows(FerryException.class, () -> stranger.acceptInvitation(invitations.get(0), "x"));
      clientPorts.addAll(ServerTraces.clientPorts(port));
      clientPorts.addAll(ServerTraces.clientPorts(web));
      relay.stop();
      server.stop();
      log = server.err() + relay.err();
    }
    assertFalse(clientPorts.isEmpty(), "saw the clients' connections");
    List<String> lines = log.lines().toList();
    assertTrue(lines.stream().anyMatch(l -> l.contains(" DEBUG ")), "debug level:\n" + log);
    List<String> forbidden = new ArrayList<>(ServerTraces.mailboxIdTexts(data.resolve("store")));
    forbidden.addAll(texts);
    forbidden.addAll(invitations);
    forbidden.add("127.0.0.1");
    forbidden.add("localhost");
    for (String line : lines) {
      assertTrue(LINE.matcher(line).matches(), "not one line per event: '" + line + "' in\n" + log);
      for (String f : forbidden) {
        assertFalse(line.contains(f), "log shows '" + f + "': " + line);
      }
      for (int p : clientPorts) {
        assertFalse(Pattern.compile("\\b" + p + "\\b").matcher(line).find(), "log shows client port " + p + ": " + line);
      }
    }
    assertEquals(List.of(), lines.stream().filter(l -> l.contains(" ERROR ")).toList(), "errors in a healthy run");
  }
}
