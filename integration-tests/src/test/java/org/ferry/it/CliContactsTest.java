package org.ferry.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Accepting twice, renaming and removing contacts on the command line. */
class CliContactsTest {
  @TempDir Path dir;

  @Test
  void acceptingTwiceExitsZeroSayingSoAndContactsAreRenamedAndRemoved() throws Exception {
    Path a = dir.resolve("a");
    Path b = dir.resolve("b");
    try (RunningServer server = new RunningServer(dir.resolve("server"))) {
      String address = server.address().toString();
      Cli.ok(a, "init", "--server", address);
      Cli.ok(b, "init", "--server", address);
      String uri = Cli.ok(a, "invite", "--name", "bob").strip();
      // As a mail client might pass it on: quoted and wrapped.
      String wrapped = "> <" + uri.substring(0, 50) + "\n> " + uri.substring(50) + ">.";
      Cli.ok(b, "accept", wrapped, "--name", "José");

      Cli.Result again = Cli.client(b, "accept", uri, "--name", "alice");
      assertEquals(0, again.exit(), again.err());
      assertTrue(again.err().contains("accepted this invitation already") && again.err().contains("José"), again.err());

      Cli.ok(b, "contacts", "rename", "Jose\u0301", "alice");
      assertEquals(List.of("alice"), Cli.client(b, "contacts").outLines().stream().map(l -> l.split("\t")[0]).toList());
      Cli.ok(b, "send", "alice", "hi");
      assertEquals(List.of("bob: hi"), Cli.client(a, "receive", "--timeout", "1").outLines());

      Cli.ok(b, "contacts", "remove", "alice");
      assertEquals(List.of(), Cli.client(b, "contacts").outLines());
      Cli.Result unknown = Cli.client(b, "contacts", "remove", "alice");
      assertEquals(1, unknown.exit());
      assertTrue(unknown.err().contains("no contact named 'alice'"), unknown.err());
    }
  }
}
