package org.ferry.it;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The command line across two servers: a send to another server says the home server holds it,
 * and a send the other server refuses is reported by the next receive and listed by `sends`.
 */
class CliFederationTest {
  @TempDir Path dir;

  @Test
  void aSendAnotherServerRefusesIsReportedByTheNextReceiveAndListedAsFailed() throws Exception {
    boolean[] denyA = {false};
    String[] fingerprintA = {null};
    try (RunningServer a = new RunningServer(dir.resolve("server-a"));
        RunningServer b = RunningServer.configured(dir.resolve("server-b"),
            builder -> denyA[0] ? builder.federationDeny(fingerprintA[0]) : builder)) {
      fingerprintA[0] = a.address().fingerprintText();
      Path alice = dir.resolve("alice");
      Path bob = dir.resolve("bob");
      Cli.ok(alice, "init", "--server", a.address().toString());
      Cli.ok(bob, "init", "--server", b.address().toString());
      Cli.ok(bob, "accept", Cli.ok(alice, "invite", "--name", "bob").strip(), "--name", "alice");
      Cli.Result sent = Cli.client(bob, "send", "alice", "hi from the other server");
      assertEquals(0, sent.exit(), sent.err());
      assertTrue(sent.err().contains("sent to alice (your server holds it for theirs"), sent.err());
      assertEquals(List.of("bob: hi from the other server"),
          Cli.client(alice, "receive", "--timeout", "3").outLines());

      Cli.ok(alice, "send", "bob", "before");
      assertEquals(List.of("alice: before"), Cli.client(bob, "receive", "--timeout", "3").outLines());

      // B stops federating with A: what Alice's server holds for B now is refused there.
      denyA[0] = true;
      b.restart();
      Cli.ok(alice, "send", "bob", "this one is refused");
      await().atMost(Duration.ofSeconds(60)).untilAsserted(() -> {
        Cli.Result r = Cli.client(alice, "receive", "--timeout", "1");
        assertTrue(r.err().contains("warning: a message to bob was not delivered"), r.err());
      });
      String listed = Cli.ok(alice, "sends");
      assertTrue(listed.startsWith("failed\tbob\t") && listed.contains("PEER_REFUSED"), listed);
    }
  }
}
