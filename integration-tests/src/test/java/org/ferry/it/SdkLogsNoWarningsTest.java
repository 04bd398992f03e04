package org.ferry.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.ferry.proto.ServerAddress;
import org.ferry.sdk.FerryClient;
import org.ferry.sdk.ReceivedMessage;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * An app that embeds the SDK sees no warnings in normal use. The app runs in its own JVM, with
 * every logger (Netty's and gRPC's included) at INFO, unlike this test JVM, where the server's
 * logging settings quieten Netty.
 */
class SdkLogsNoWarningsTest {
  @TempDir Path dir;

  /** The embedding app: two users connect, one invites the other, each sends and receives. */
  public static void main(String[] args) {
    ServerAddress server = ServerAddress.parse(args[0]);
    Path data = Path.of(args[1]);
    try (FerryClient alice = TestClients.open(data, "alice"); FerryClient bob = TestClients.open(data, "bob")) {
      alice.initialize(server);
      bob.initialize(server);
      bob.acceptInvitation(alice.createInvitation("bob").uri(), "alice");
      bob.send("alice", "hello");
      List<ReceivedMessage> got = new ArrayList<>();
      alice.receive(Duration.ofMillis(500), got::add);
      alice.send("bob", "hi");
      bob.receive(Duration.ofMillis(500), got::add);
      System.out.println("received " + got.size());
    }
  }

  @Test
  void anAppThatConnectsSendsAndReceivesLogsNoWarnings() throws Exception {
    try (RunningServer server = new RunningServer(dir.resolve("server"))) {
      Path err = dir.resolve("app.err");
      Path out = dir.resolve("app.out");
      List<String> command = List.of(
          Path.of(System.getProperty("java.home"), "bin", "java").toString(),
          "-Dorg.slf4j.simpleLogger.defaultLogLevel=info",
          "-Dorg.slf4j.simpleLogger.log.io.netty=info",
          "-Dorg.slf4j.simpleLogger.log.io.grpc=info",
          "-cp", System.getProperty("java.class.path"),
          SdkLogsNoWarningsTest.class.getName(), server.address().toString(), dir.resolve("app").toString());
      Process p = new ProcessBuilder(command).redirectOutput(out.toFile()).redirectError(err.toFile()).start();
      assertTrue(p.waitFor(120, TimeUnit.SECONDS), "the app finished");
      String log = Files.readString(err, StandardCharsets.UTF_8);
      assertEquals(0, p.exitValue(), log);
      assertEquals("received 2", Files.readString(out).strip(), log);
      assertTrue(log.lines().noneMatch(l -> l.contains("WARN") || l.contains("ERROR")), log);
    }
  }
}
