package org.ferry.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** `ferry client bridges add` reads lines as invitations and contact cards do. */
class CliBridgeLinesTest {
  private static final String CERT = "jkln8PzGUN4HHYz778i9Nqmq3CEiagj9dpV8byIJYk8TWrFyDT8P+p3IibPkjkFpOGfMcw";

  @TempDir Path dir;
  private RunningServer server;
  private Path a;

  @BeforeEach
  void setUp() throws Exception {
    server = new RunningServer(dir.resolve("server"));
    a = dir.resolve("a");
    Cli.ok(a, "init", "--server", server.address().toString());
  }

  @AfterEach
  void tearDown() {
    server.close();
  }

  private List<String> lines() {
    return Cli.ok(a, "bridges", "list").lines().toList();
  }

  @Test
  void tabsAndNoBreakSpacesBetweenFieldsAreAccepted() {
    Cli.Result r = Cli.client(a, "bridges", "add", "obfs4\t198.51.100.4:8444\u00a0cert=" + CERT + "\u00a0iat-mode=1");
    assertEquals(0, r.exit(), r.err());
    assertEquals(List.of("bridge added"), r.errLines());
    assertEquals(List.of("obfs4 198.51.100.4:8444 cert=" + CERT + " iat-mode=1"), lines());
  }

  @Test
  void anUnknownParameterIsLeftOutWithANote() {
    Cli.Result r = Cli.client(a, "bridges", "add", "ws", "wss://198.51.100.4:443/secretpath", "fronting=cdn.example");
    assertEquals(0, r.exit(), r.err());
    assertEquals(List.of(
        "ferry client: note: ws 198.51.100.4:443: left out parameter 'fronting', which this version does not know",
        "bridge added"), r.errLines());
    assertEquals(List.of("ws wss://198.51.100.4:443/secretpath"), lines());
  }

  @Test
  void aLineForAnUnknownCarrierIsSkippedWithANote() {
    Cli.Result r = Cli.client(a, "bridges", "add", "meek https://cdn.example/x front=y");
    assertEquals(0, r.exit(), r.err());
    assertTrue(r.err().contains("note: skipped a bridge line for carrier 'meek'"), r.err());
    assertTrue(r.err().contains("no bridge added"), r.err());
    assertEquals(List.of(), lines());
  }

  @Test
  void aBadValueIsRefusedNamingTheKey() {
    Cli.Result r = Cli.client(a, "bridges", "add", "obfs4 198.51.100.4:8444 cert=" + CERT + " iat-mode=x");
    assertNotEquals(0, r.exit());
    assertEquals(1, r.errLines().size(), r.err());
    assertTrue(r.err().contains("iat-mode must be 0, 1 or 2"), r.err());
    Cli.Result injected = Cli.client(a, "bridges", "add", "obfs4 198.51.100.4:8444 cert=" + CERT + ";iat-mode=2 iat-mode=0");
    assertNotEquals(0, injected.exit());
    assertTrue(injected.err().contains("cert must be"), injected.err());
    assertEquals(List.of(), lines());
  }
}
