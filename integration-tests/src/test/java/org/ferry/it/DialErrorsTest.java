package org.ferry.it;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.EnumSet;
import java.util.List;
import java.util.Optional;
import org.ferry.it.censor.Censor;
import org.ferry.it.censor.Censor.Rule;
import org.ferry.proto.BridgeLine;
import org.ferry.proto.ServerAddress;
import org.ferry.relay.Carrier;
import org.ferry.relay.Relay;
import org.ferry.sdk.FerryClient;
import org.ferry.sdk.FerryException;
import org.ferry.sdk.NetworkStatus;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * What a user is told when no line gets through: which proxy refused and how, a bridge that is
 * blocked versus one whose server is down; never a Netty internal, a hex dump or a password.
 */
class DialErrorsTest {
  private static final String PASSWORD = "pw-7c1f-secret";

  @TempDir Path dir;

  private final Closer closer = new Closer();
  private BridgedServer net;

  @BeforeEach
  void start() throws Exception {
    net = closer.add(new BridgedServer(dir));
  }

  @AfterEach
  void closeAll() {
    closer.close();
  }

  private ServerAddress censoredServer() {
    return net.censoredAddress();
  }

  private static void assertPlain(String message) {
    assertFalse(message.contains(" => ") || message.contains("socks5, ") || message.contains("http, "),
        "Netty's wording: " + message);
    assertFalse(message.matches("(?s).*[0-9a-f]{16,}.*"), "a hex dump: " + message);
    assertFalse(message.contains(PASSWORD), "the proxy password: " + message);
  }

  private static void assertOneLineError(Cli.Result r, String mentions) {
    assertNotEquals(0, r.exit(), "must fail: " + r);
    assertEquals(1, r.errLines().size(), "one line on stderr: " + r.err());
    assertTrue(r.err().contains(mentions), "should mention '" + mentions + "': " + r.err());
    assertPlain(r.err());
  }

  private Cli.Result initThrough(String proxy, BridgeLine bridge) {
    return Cli.client(dir.resolve("user"), "--proxy", proxy, "init", "--server", censoredServer().toString(),
        "--bridge", bridge.toString());
  }

  @Test
  void aBridgeWhoseServerIsDownIsToldApartFromABlockedOneAndIsNotBackedOff() throws Exception {
    Censor web = closer.add(Censor.start(net.relay.webAddress()));
    List<BridgeLine> bridges = List.of(net.line(BridgeLine.Kind.WS, false, web.port()), net.line(BridgeLine.Kind.POLL, false, web.port()));
    byte[] key = new byte[32];
    new SecureRandom().nextBytes(key);
    FerryClient alice = closer.add(FerryClient.builder().dataDirectory(dir.resolve("alice")).storageKey(key).build());
    alice.initialize(censoredServer(), "", bridges.stream().map(BridgeLine::toString).toList());

    net.server.stop();
    FerryException down = assertThrows(FerryException.class, () -> alice.createInvitation("bob"));
    assertEquals(FerryException.Reason.UNREACHABLE, down.reason());
    assertTrue(down.getMessage().contains("ws ") && down.getMessage().contains("poll "), down.getMessage());
    assertEquals(2, down.getMessage().split("the bridge answered, but the server behind it did not", -1).length - 1,
        "both bridges said the server behind them is down: " + down.getMessage());
    assertPlain(down.getMessage());
    for (BridgeLine b : bridges) {
      NetworkStatus.Line h = alice.networkStatus().get(0).lines().stream()
          .filter(l -> l.line().equals(b.toString())).findFirst().orElseThrow();
      assertEquals(Optional.empty(), h.backingOffUntil(), "a healthy bridge is not backed off for a dead server: " + h);
    }

    // Now the bridge itself is blocked. A call made while gRPC waits to dial again reports the
    // last dial; the next dial reports the block.
    web.block(Rule.BLOCK_PORT);
    await().atMost(Duration.ofSeconds(20)).untilAsserted(() -> {
      FerryException blocked = assertThrows(FerryException.class, () -> alice.createInvitation("bob"));
      assertFalse(blocked.getMessage().contains("server behind it"), blocked.getMessage());
      assertTrue(blocked.getMessage().contains("ws ") && blocked.getMessage().contains("poll "), blocked.getMessage());
      assertPlain(blocked.getMessage());
    });
    for (BridgeLine b : bridges) {
      NetworkStatus.Line h = alice.networkStatus().get(0).lines().stream()
          .filter(l -> l.line().equals(b.toString())).findFirst().orElseThrow();
      assertTrue(h.backingOffUntil().isPresent(), "a blocked bridge backs off: " + h);
    }
  }

  @Test
  void anObfs4BridgeWhoseServerIsDownIsNotBackedOff() throws Exception {
    Relay obfs4Relay = closer.add(Relay.builder()
        .dataDirectory(dir.resolve("obfs4-relay"))
        .listen(new InetSocketAddress("127.0.0.1", 0))
        .upstream(new InetSocketAddress("127.0.0.1", net.server.address().port()))
        .carriers(EnumSet.of(Carrier.OBFS4))
        .obfs4proxy(ExternalTools.require("obfs4proxy", "obfs4proxy"))
        .start());
    BridgeLine obfs4 = obfs4Relay.bridgeLines().get(0);
    byte[] key = new byte[32];
    new SecureRandom().nextBytes(key);
    FerryClient alice = closer.add(FerryClient.builder().dataDirectory(dir.resolve("alice")).storageKey(key).build());
    alice.initialize(censoredServer(), "", List.of(obfs4.toString()));

    net.server.stop();
    FerryException down = assertThrows(FerryException.class, () -> alice.createInvitation("bob"));
    assertTrue(down.getMessage().contains("obfs4 ") && down.getMessage().contains("the server behind it did not"),
        down.getMessage());
    NetworkStatus.Line h = alice.networkStatus().get(0).lines().stream()
        .filter(l -> l.line().equals(obfs4.toString())).findFirst().orElseThrow();
    assertEquals(Optional.empty(), h.backingOffUntil(), "a healthy bridge is not backed off for a dead server: " + h);
  }

  @Test
  void anHttpProxyThatRefusesConnectIsNamedWithItsStatusLine() throws Exception {
    int port = ExternalTools.startTinyproxy(dir, closer);
    // wss needs CONNECT, which this proxy allows only to port 443.
    Cli.Result r = initThrough("http://127.0.0.1:" + port, net.line(BridgeLine.Kind.WS, true, net.webPort()));
    assertOneLineError(r, "the HTTP proxy refused to connect to it (CONNECT answered 403");
  }

  @Test
  void aSocksProxyThatRefusesThePasswordSaysSoWithoutShowingIt() throws Exception {
    String microsocks = ExternalTools.require("microsocks", "microsocks");
    int port = ExternalProcess.freePort();
    closer.add(ExternalProcess.start(List.of(microsocks, "-i", "127.0.0.1", "-p", Integer.toString(port),
        "-u", "alice", "-P", "the-right-one"), dir.resolve("microsocks.log"), port));
    Cli.Result r = initThrough("socks5://alice:" + PASSWORD + "@127.0.0.1:" + port,
        net.line(BridgeLine.Kind.WS, false, net.webPort()));
    assertOneLineError(r, "the SOCKS5 proxy refused the user name or password");
  }

  @Test
  void aMalformedProxyUriNeverShowsItsPassword() {
    for (String bad : List.of("socks5://alice:" + PASSWORD + "@127.0.0.1", "socks5://alice:" + PASSWORD + "@exa mple:1")) {
      Cli.Result r = Cli.client(dir.resolve("user"), "--proxy", bad, "init", "--server", censoredServer().toString());
      assertOneLineError(r, "proxy ");
      assertTrue(r.err().contains("alice:***@"), r.err());
    }
  }
}
