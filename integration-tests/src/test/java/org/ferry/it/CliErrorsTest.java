package org.ferry.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import org.ferry.proto.ServerAddress;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Every user error prints one clear line on stderr and exits non-zero. */
class CliErrorsTest {
  @TempDir Path dir;
  RunningServer server;
  Path a;
  Path b;

  @BeforeEach
  void setUp() throws Exception {
    server = new RunningServer(dir.resolve("server"));
    a = dir.resolve("a");
    b = dir.resolve("b");
    Cli.ok(a, "init", "--server", server.address().toString());
    Cli.ok(b, "init", "--server", server.address().toString());
  }

  @AfterEach
  void tearDown() {
    server.close();
  }

  private static void assertOneLineError(Cli.Result r, String mentions) {
    assertNotEquals(0, r.exit(), "must fail: " + r);
    assertEquals(1, r.errLines().size(), "one line on stderr: " + r.err());
    assertTrue(r.err().startsWith("ferry client: "), r.err());
    assertTrue(r.err().contains(mentions), "should mention '" + mentions + "': " + r.err());
    assertEquals("", r.out(), "nothing on stdout");
  }

  @Test
  void unknownLabel() {
    assertOneLineError(Cli.client(a, "send", "nobody", "hi"), "no contact named 'nobody'");
  }

  @Test
  void unreachableServer() throws Exception {
    Cli.ok(b, "accept", Cli.ok(a, "invite", "--name", "bob").strip(), "--name", "alice");
    server.stop();
    assertOneLineError(Cli.client(b, "send", "alice", "hi"), "cannot reach server");
    assertOneLineError(Cli.client(a, "receive", "--timeout", "1"), "cannot reach server");
  }

  @Test
  void malformedInvitation() {
    assertOneLineError(Cli.client(b, "accept", "ferry:invite/bm9wZQ", "--name", "x"), "not a valid Ferry invitation");
    assertOneLineError(Cli.client(b, "accept", "https://example.org", "--name", "x"), "not a valid Ferry invitation");
  }

  @Test
  void reusedInvitation() {
    String uri = Cli.ok(a, "invite", "--name", "bob").strip();
    Cli.ok(b, "accept", uri, "--name", "alice");
    Path c = dir.resolve("c");
    Cli.ok(c, "init", "--server", server.address().toString());
    assertOneLineError(Cli.client(c, "accept", uri, "--name", "alice"), "already used");
  }

  @Test
  void serverFingerprintMismatch() {
    ServerAddress real = server.address();
    ServerAddress forged = new ServerAddress(real.host(), real.port(), new byte[32]);
    Path c = dir.resolve("c");
    assertOneLineError(Cli.client(c, "init", "--server", forged.toString()), "impostor");
    assertTrue(!Files.exists(c.resolve("store.key")), "a failed init leaves nothing behind");
  }

  @Test
  void aServerAddressTakenOverByAnotherKeyIsRefusedAsAnImpostor() throws Exception {
    String uri = Cli.ok(a, "invite", "--name", "bob").strip();
    int port = server.address().port();
    server.close();
    try (RunningServer impostor = RunningServer.onPort(dir.resolve("impostor"), port)) {
      assertEquals(port, impostor.address().port(), "the impostor holds the real address");
      assertOneLineError(Cli.client(b, "accept", uri, "--name", "alice"), "impostor");
      assertOneLineError(Cli.client(a, "receive", "--timeout", "1"), "impostor");
    }
    server = RunningServer.onPort(dir.resolve("server"), port);
    // The real server is back: the invitation was never taken and still works.
    Cli.ok(b, "accept", uri, "--name", "alice");
  }

  @Test
  void labelsThatAreTakenOrMalformed() {
    Cli.ok(a, "invite", "--name", "bob");
    assertOneLineError(Cli.client(a, "invite", "--name", "bob"), "exists already");
    assertOneLineError(Cli.client(a, "invite", "--name", "two words"), "a label is");
  }

  @Test
  void sendingToSomeoneWhoHasNotAcceptedYet() {
    Cli.ok(a, "invite", "--name", "bob");
    assertOneLineError(Cli.client(a, "send", "bob", "hi"), "has not accepted");
  }
}
