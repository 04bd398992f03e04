package org.ferry.it;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.ferry.it.censor.Censor;
import org.ferry.proto.BridgeLine;
import org.ferry.proto.ServerAddress;
import org.ferry.sdk.FerryClient;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code ferry server status}, asked of real server processes over their admin channel. */
class ServerStatusTest {
  private static final Duration BOUND = Duration.ofSeconds(30);
  private static final ObjectMapper JSON = new ObjectMapper();

  @TempDir Path dir;

  @Test
  void statusShowsConnectionsByCarrierQueueDepthAndBridgesThatAnswer() throws Exception {
    Path data = dir.resolve("server");
    try (FerryProcess server = FerryProcess.server(dir.resolve("run"), "--data", data.toString(),
            "--listen", "127.0.0.1:0", "--carriers", "ws,poll");
        Censor direct = Censor.start(new InetSocketAddress("127.0.0.1", server.address().port()))
            .block(Censor.Rule.BLOCK_PORT);
        FerryClient alice = TestClients.open(dir, "alice");
        FerryClient bob = TestClients.open(dir, "bob")) {
      String ws = server.out().lines().filter(l -> l.startsWith("bridge: ws ")).findFirst().orElseThrow()
          .substring("bridge: ".length());
      // Alice reaches the server only over its WebSocket carrier, Bob directly.
      alice.initialize(new ServerAddress("127.0.0.1", direct.port(), server.address().fingerprint()), "", List.of(ws));
      bob.initialize(server.address());
      bob.acceptInvitation(alice.createInvitation("bob").uri(), "alice");
      // Accepting the invitation left Alice an envelope or more already.
      long queued = queueEnvelopes(data);
      assertTrue(queued >= 1);
      for (int i = 0; i < 3; i++) {
        bob.send("alice", "waiting " + i);
      }

      int webPort = BridgeLine.parse(ws).port();
      await().atMost(BOUND).untilAsserted(() -> {
        // What the OS sees: connections to the gRPC port (direct ones, and one per carrier
        // session from the carrier), and carrier sessions on the web port.
        int grpcConnections = established(server.address().port());
        int wsSessions = established(webPort);
        FerryProcess.Exited json = FerryProcess.runServer(dir.resolve("s"), "status", "--json", "--data", data.toString());
        assertEquals(0, json.exit(), json.err());
        JsonNode s = JSON.readTree(json.out());
        assertEquals(server.address().toString(), s.path("address").asText());
        assertEquals(queued + 3, s.path("queue").path("envelopes").asLong(), json.out());
        assertTrue(s.path("queue").path("bytes").asLong() >= (queued + 3) * 1024, json.out());
        assertTrue(wsSessions >= 1);
        assertEquals(wsSessions, s.path("connections").path("ws").asLong(), json.out());
        assertEquals(0, s.path("connections").path("poll").asLong(), json.out());
        assertEquals(grpcConnections - wsSessions, s.path("connections").path("direct").asLong(), json.out());
        assertEquals(0, s.path("receive_streams").asLong(), json.out());
        assertEquals(4L << 30, s.path("disk").path("storage_budget_bytes").asLong());
        assertEquals(s.path("queue").path("bytes").asLong(), s.path("disk").path("storage_budget_used_bytes").asLong());
        assertTrue(s.path("disk").path("accepting").asBoolean());
        assertEquals("open", s.path("federation").path("mode").asText(), json.out());
        assertEquals(0, s.path("federation").path("outbound_items").asLong(), json.out());
        assertEquals(2, s.path("bridges").size());
        for (JsonNode b : s.path("bridges")) {
          assertTrue(b.path("answers").asBoolean(), b.toString());
        }
      });
      FerryProcess.Exited text = FerryProcess.runServer(dir.resolve("t"), "status", "--data", data.toString());
      assertEquals(0, text.exit(), text.err());
      assertTrue(text.out().matches("(?s).*connections: [0-9]+ \\(direct [0-9]+, ws [1-9][0-9]*, poll 0\\)\n.*"),
          text.out());
      assertTrue(text.out().contains("queue: " + (queued + 3) + " envelopes, "), text.out());
      assertTrue(text.out().contains("receive streams: 0\n"), text.out());
      assertTrue(text.out().contains("federation: open; nothing waiting for other servers\n"), text.out());
      assertTrue(text.out().contains("bridge " + ws + ": answers ("), text.out());
      assertTrue(text.out().lines().anyMatch(l -> l.startsWith("bridge poll ") && l.contains(": answers (")), text.out());
    }
  }

  @Test
  void withNoServerStatusSaysSoAndExitsWithThree() throws Exception {
    Path data = dir.resolve("server");
    FerryProcess.Exited none = FerryProcess.runServer(dir.resolve("a"), "status", "--data", data.toString());
    assertEquals(3, none.exit());
    assertEquals(List.of("ferry server status: no Ferry server data in " + data + " (no such directory)"),
        none.errLines());
    try (FerryProcess server = FerryProcess.server(dir.resolve("run"), "--data", data.toString(),
        "--listen", "127.0.0.1:0")) {
      assertEquals(0, FerryProcess.runServer(dir.resolve("b"), "status", "--data", data.toString()).exit());
    }
    FerryProcess.Exited stopped = FerryProcess.runServer(dir.resolve("c"), "status", "--data", data.toString());
    assertEquals(3, stopped.exit());
    assertEquals(List.of("ferry server status: no Ferry server is running on " + data), stopped.errLines());
  }

  @Test
  void onlyTheServersUserCanUseTheAdminChannel() throws Exception {
    Path data = dir.resolve("server");
    try (FerryProcess server = FerryProcess.server(dir.resolve("run"), "--data", data.toString(),
        "--listen", "127.0.0.1:0")) {
      Path socket = data.resolve("admin.sock");
      assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(socket)));
      assertEquals("rwx------", PosixFilePermissions.toString(Files.getPosixFilePermissions(data)));
      boolean canDropPrivileges = "root".equals(System.getProperty("user.name"))
          && Files.isExecutable(Path.of("/usr/bin/setpriv")) && Files.isExecutable(Path.of("/usr/bin/python3"));
      if (!canDropPrivileges) {
        System.out.println("not root, or no setpriv/python3: only the modes were checked");
        return;
      }
      // Let another user reach the socket, so that only the socket's own mode keeps them out.
      Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwx--x--x"));
      Files.setPosixFilePermissions(data, PosixFilePermissions.fromString("rwx--x--x"));
      assertEquals("ERROR 13", asNobody(socket), "EACCES: the socket is owner-only");
      // Even a socket opened up by mistake answers no other user: the server checks who connects.
      Files.setPosixFilePermissions(socket, PosixFilePermissions.fromString("rw-rw-rw-"));
      assertEquals("ANSWER 0", asNobody(socket), "closed unanswered");
      FerryProcess.Exited mine = FerryProcess.runServer(dir.resolve("s"), "status", "--data", data.toString());
      assertEquals(0, mine.exit(), mine.err());
    }
  }

  private long queueEnvelopes(Path data) throws Exception {
    FerryProcess.Exited json = FerryProcess.runServer(dir.resolve("q"), "status", "--json", "--data", data.toString());
    assertEquals(0, json.exit(), json.err());
    return JSON.readTree(json.out()).path("queue").path("envelopes").asLong();
  }

  /** TCP connections established to {@code port} on this machine now (the server's side of each). */
  private static int established(int port) throws Exception {
    int n = 0;
    for (String table : List.of("/proc/net/tcp", "/proc/net/tcp6")) {
      List<String> lines = Files.readAllLines(Path.of(table));
      for (String line : lines.subList(1, lines.size())) {
        String[] f = line.trim().split("\\s+");
        int local = Integer.parseInt(f[1].substring(f[1].indexOf(':') + 1), 16);
        if (local == port && f[3].equals("01")) {
          n++;
        }
      }
    }
    return n;
  }

  /** Connects to the socket as user and group 65534 (nobody) and asks for the status. */
  private String asNobody(Path socket) throws Exception {
    String script = String.join("\n",
        "import socket, sys",
        "s = socket.socket(socket.AF_UNIX)",
        "try:",
        "    s.connect(sys.argv[1])",
        "except OSError as e:",
        "    print('ERROR', e.errno)",
        "    sys.exit(0)",
        "d = b''",
        "try:",
        "    s.sendall(b'status\\n')",
        "    while True:",
        "        c = s.recv(65536)",
        "        if not c:",
        "            break",
        "        d += c",
        "except (ConnectionResetError, BrokenPipeError):",
        "    pass",
        "print('ANSWER', len(d))");
    Process p = new ProcessBuilder("/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
        "/usr/bin/python3", "-c", script, socket.toString()).redirectErrorStream(true).start();
    assertTrue(p.waitFor(30, TimeUnit.SECONDS));
    return new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip();
  }
}
