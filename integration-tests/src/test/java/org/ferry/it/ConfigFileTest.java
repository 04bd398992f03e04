package org.ferry.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.ferry.sdk.FerryClient;
import org.ferry.sdk.FerryException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** `ferry server --config` and `ferry relay --config` as real processes. */
class ConfigFileTest {
  private static final String TOKEN = "s3cret-creation-token";

  @TempDir Path dir;

  @Test
  void aFileWithEveryKeyStartsAServerThatFollowsIt() throws Exception {
    int port = ExternalProcess.freePort();
    int carrierPort = ExternalProcess.freePort();
    int fallbackPort = ExternalProcess.freePort();
    Path data = dir.resolve("from-file");
    Path token = Files.writeString(dir.resolve("token"), TOKEN + "\n");
    Path config = Files.writeString(dir.resolve("server.toml"), """
        # Every key ferry server has.
        data = "%s"
        listen = "127.0.0.1:%d"
        advertise = "127.0.0.1"
        default-ttl = "2h"
        mailbox-max-envelopes = 2
        mailbox-max-bytes = "1M"
        storage-budget = "64M"
        create-rate = 50.5
        create-burst = 20
        creation-token-file = "%s"
        carriers = "ws,poll"
        carrier-listen = "127.0.0.1:%d"
        fallback = "127.0.0.1:%d"
        log-level = "debug"
        metrics-listen = "127.0.0.1:0"
        """.formatted(data, port, token, carrierPort, fallbackPort));
    try (FerryProcess server = FerryProcess.server(dir.resolve("run"), "--config", config.toString());
        FerryClient alice = TestClients.open(dir, "alice");
        FerryClient bob = TestClients.open(dir, "bob");
        FerryClient stranger = TestClients.open(dir, "stranger")) {
      assertEquals(port, server.address().port(), "listen");
      assertEquals(server.address().toString(), Files.readString(data.resolve("server-address")).strip(), "data");
      assertTrue(server.out().contains(":" + carrierPort), "carriers on carrier-listen:\n" + server.out());
      assertTrue(server.err().contains("DEBUG"), "log-level debug:\n" + server.err());

      stranger.initialize(server.address());
      FerryException refused = assertThrows(FerryException.class, () -> stranger.createInvitation("x"));
      assertEquals(FerryException.Reason.CREATION_TOKEN_REQUIRED, refused.reason(), "creation-token-file");

      alice.initialize(server.address(), TOKEN);
      bob.initialize(server.address(), TOKEN);
      bob.acceptInvitation(alice.createInvitation("bob").uri(), "alice");
      // mailbox-max-envelopes = 2: the handshake reply and one message fit, a second does not.
      bob.send("alice", "one");
      FerryException full = assertThrows(FerryException.class, () -> bob.send("alice", "two"));
      assertEquals(FerryException.Reason.RECIPIENT_FULL, full.reason(), "mailbox-max-envelopes");
    }
  }

  @Test
  void flagsWinOverTheFile() throws Exception {
    int filePort = ExternalProcess.freePort();
    int flagPort = ExternalProcess.freePort();
    Path data = dir.resolve("data");
    Path config = Files.writeString(dir.resolve("server.toml"), """
        data = "%s"
        listen = "127.0.0.1:%d"
        mailbox-max-envelopes = 2
        """.formatted(data, filePort));
    try (FerryProcess server = FerryProcess.server(dir.resolve("run"),
            "--config", config.toString(), "--listen", "127.0.0.1:" + flagPort, "--mailbox-max-envelopes", "50");
        FerryClient alice = TestClients.open(dir, "alice");
        FerryClient bob = TestClients.open(dir, "bob")) {
      assertEquals(flagPort, server.address().port());
      assertTrue(Files.exists(data.resolve("server-address")), "data from the file");
      alice.initialize(server.address());
      bob.initialize(server.address());
      bob.acceptInvitation(alice.createInvitation("bob").uri(), "alice");
      bob.send("alice", "one");
      bob.send("alice", "two"); // fits: the flag's 50, not the file's 2
    }
  }

  @ParameterizedTest(name = "{0}")
  @CsvSource(delimiter = '|', textBlock = """
      unknown key         | mailbox-max-envelope = 5           | mailbox-max-envelope
      unknown table       | '[metrics]'                        | metrics
      wrong type          | mailbox-max-envelopes = "5"        | mailbox-max-envelopes
      wrong type, size    | storage-budget = true              | storage-budget
      size out of range   | mailbox-max-bytes = 10000000000000000 | mailbox-max-bytes
      missing token file  | creation-token-file = "/nonexistent/tok" | creation-token-file
      out of range        | create-burst = 0                   | create-burst
      out of range, int   | create-burst = 99999999999         | create-burst
      bad duration        | default-ttl = "3 weeks"            | default-ttl
      bad address         | carrier-listen = "localhost"       | carrier-listen
      bad log level       | log-level = "verbose"              | log-level
      malformed TOML      | create-rate = = 4                  | ''
      duplicate key       | data = "again"                     | data
      """)
  void aBadFileStopsStartUpWithOneLineNamingTheKeyAndLineAndWritesNothing(
      String what, String badLine, String key) throws Exception {
    Path data = dir.resolve("data");
    Path config = Files.writeString(dir.resolve("server.toml"),
        "# a server\ndata = \"" + data + "\"\nlisten = \"127.0.0.1:0\"\n\n" + badLine + "\n");
    FerryProcess.Exited run = FerryProcess.runServer(dir.resolve("run"), "--config", config.toString());
    assertEquals(2, run.exit(), what + ": " + run.err());
    assertEquals(1, run.errLines().size(), what + ": one line:\n" + run.err());
    String line = run.errLines().get(0);
    assertTrue(line.contains(config.toString() + " line 5"), what + ": file and line: " + line);
    assertTrue(line.contains(key), what + ": key: " + line);
    assertFalse(line.contains("Exception") || line.contains("com.fasterxml"), what + ": no internals: " + line);
    assertFalse(Files.exists(data), what + ": nothing written to the data directory");
  }

  @Test
  void anEmptyDataPathIsRefusedBeforeAnythingIsWritten() throws Exception {
    Path config = Files.writeString(dir.resolve("server.toml"), "data = \"\"\nlisten = \"127.0.0.1:0\"\n");
    Path run = dir.resolve("run");
    FerryProcess.Exited fromFile = FerryProcess.runServer(run, "--config", config.toString());
    assertEquals(2, fromFile.exit(), fromFile.err());
    assertEquals(1, fromFile.errLines().size(), fromFile.err());
    assertTrue(fromFile.err().contains(config + " line 1: data: must name a directory"), fromFile.err());
    FerryProcess.Exited fromFlag = FerryProcess.runServer(run, "--data", "", "--listen", "127.0.0.1:0");
    assertEquals(2, fromFlag.exit(), fromFlag.err());
    assertTrue(fromFlag.err().contains("--data: must name a directory"), fromFlag.err());
    for (String made : List.of("identity", "store", "clock", ".lock")) {
      assertFalse(Files.exists(run.resolve(made)), made + " was written where the server ran");
      assertFalse(Files.exists(Path.of(made).toAbsolutePath()), made + " was written in the test's directory");
    }
  }

  @Test
  void printConfigShowsTheEffectiveValuesAndNoSecret() throws Exception {
    Path token = Files.writeString(dir.resolve("token"), TOKEN + "\n");
    Path data = dir.resolve("data");
    Path config = Files.writeString(dir.resolve("server.toml"), """
        data = "%s"
        mailbox-max-bytes = "1M"
        creation-token-file = "%s"
        """.formatted(data, token));
    FerryProcess.Exited run = FerryProcess.runServer(dir.resolve("run"),
        "--config", config.toString(), "--print-config", "--create-burst", "7");
    assertEquals(0, run.exit(), run.err());
    String out = run.out();
    for (String expected : List.of(
        "data = \"" + data + "\"",
        "mailbox-max-bytes = \"1M\"",
        "create-burst = 7",
        "listen = \"127.0.0.1:7443\"",
        "default-ttl = \"21d\"",
        "creation-token-file = \"" + token + "\"")) {
      assertTrue(out.contains(expected), "'" + expected + "' in:\n" + out);
    }
    assertFalse(out.contains(TOKEN), "the token itself:\n" + out);
    assertFalse(Files.exists(data), "printing makes no data directory");

    // What it prints is a config file that gives the same configuration.
    Path printed = Files.writeString(dir.resolve("printed.toml"), out);
    FerryProcess.Exited again = FerryProcess.runServer(dir.resolve("run2"),
        "--config", printed.toString(), "--print-config");
    assertEquals(0, again.exit(), again.err());
    assertEquals(values(out), values(again.out()));
  }

  @Test
  void theRelayReadsItsConfigFileAndRefusesUnknownKeys() throws Exception {
    int web = ExternalProcess.freePort();
    Path data = dir.resolve("relay");
    Path config = Files.writeString(dir.resolve("relay.toml"), """
        data = "%s"
        listen = "127.0.0.1:%d"
        upstream = "127.0.0.1:7443"
        carriers = "ws,poll"
        log-level = "warn"
        """.formatted(data, web));
    FerryProcess.Exited printed = FerryProcess.runRelay(dir.resolve("p"), "--config", config.toString(), "--print-config");
    assertEquals(0, printed.exit(), printed.err());
    assertTrue(printed.out().contains("carriers = \"ws,poll\""), printed.out());
    assertTrue(printed.out().contains("obfs4proxy = \"obfs4proxy\""), printed.out());

    try (FerryProcess relay = FerryProcess.relay(dir.resolve("run"), "--config", config.toString())) {
      assertTrue(Files.exists(data.resolve("bridges")), "data from the file");
      assertTrue(relay.out().contains(":" + web), relay.out());
    }

    Files.writeString(config, "\nlisten = \"127.0.0.1:1\"\nupstream = \"127.0.0.1:7443\"\nupstream-port = 3\n");
    FerryProcess.Exited bad = FerryProcess.runRelay(dir.resolve("b"), "--config", config.toString());
    assertEquals(2, bad.exit(), bad.err());
    assertEquals(List.of("ferry relay: " + config + " line 4: unknown key 'upstream-port'"), bad.errLines());
  }

  /** The printed lines without their "# where from" comments. */
  private static List<String> values(String printed) {
    return printed.lines().map(l -> l.replaceAll("\\s+#.*$", "")).toList();
  }
}
