package org.ferry.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Invitations handed over as QR codes, by the CLI exactly as written, over real TLS on loopback. */
class CliQrInvitationTest {
  @TempDir Path dir;

  @Test
  void bobAcceptsAnInvitationFromItsQrImageAndTheyExchangeMessages() throws Exception {
    Path a = dir.resolve("a");
    Path b = dir.resolve("b");
    Path png = dir.resolve("for-bob.png");
    try (RunningServer server = new RunningServer(dir.resolve("server"))) {
      Cli.ok(a, "init", "--server", server.address().toString());
      Cli.ok(b, "init", "--server", server.address().toString());

      Cli.Result invited = Cli.client(a, "invite", "--name", "bob", "--qr-png", png.toString());
      assertEquals(0, invited.exit(), invited.toString());
      assertTrue(invited.out().strip().startsWith("ferry:invite/"), "stdout keeps the URI: " + invited);
      assertTrue(Files.size(png) > 0);

      Cli.ok(b, "accept", "--qr-image", png.toString(), "--name", "alice");
      Cli.ok(b, "send", "alice", "hi from the picture");
      assertEquals(List.of("bob: hi from the picture"), Cli.client(a, "receive", "--timeout", "1").outLines());
      Cli.ok(a, "send", "bob", "hello");
      assertEquals(List.of("alice: hello"), Cli.client(b, "receive", "--timeout", "1").outLines());

      // With --qr, stdout holds the code alone and the URI goes to stderr.
      Cli.Result drawn = Cli.client(a, "invite", "--name", "carol", "--qr");
      assertEquals(0, drawn.exit(), drawn.toString());
      assertTrue(drawn.out().chars().allMatch(c -> " \u2580\u2584\u2588\n".indexOf(c) >= 0), drawn.out());
      assertTrue(drawn.outLines().size() > 20, drawn.out());
      assertTrue(drawn.errLines().get(drawn.errLines().size() - 1).startsWith("ferry:invite/"), drawn.err());
    }
  }
}
