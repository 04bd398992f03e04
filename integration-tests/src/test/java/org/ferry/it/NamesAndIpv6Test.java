package org.ferry.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.UnknownHostException;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.stream.Stream;
import org.ferry.it.censor.Censor;
import org.ferry.it.censor.Censor.Rule;
import org.ferry.proto.BridgeLine;
import org.ferry.proto.HostPort;
import org.ferry.proto.ServerAddress;
import org.ferry.relay.Carrier;
import org.ferry.relay.Relay;
import org.ferry.sdk.FerryClient;
import org.ferry.sdk.FerryException;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Every carrier through every kind of proxy reaches a relay by a name that only the proxy can
 * resolve (so a lookup by the client's system, or by obfs4proxy, fails the connection), and
 * every carrier reaches a relay and server that listen on IPv6 loopback only, with and without
 * a proxy. The home server's own port is blocked, so the line under test is the only way in.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class NamesAndIpv6Test {
  /** Known to the test proxy only; {@code .invalid} never resolves anywhere else (RFC 6761). */
  static final String NAME = "relay.ferry-test.invalid";

  @TempDir static Path dir;
  private final Closer closer = new Closer();
  private String obfs4proxy;
  private World v4;
  private World v6;

  /** A server and a relay with every carrier, on one loopback address. */
  private record World(String host, RunningServer server, Relay relay, Censor blockedHome) {
    ServerAddress home() {
      return new ServerAddress("127.0.0.1", blockedHome.port(), server.address().fingerprint());
    }

    BridgeLine line(String carrier, String lineHost) {
      BridgeLine ws = relay.bridgeLines().stream().filter(l -> l.kind() == BridgeLine.Kind.WS).findFirst().orElseThrow();
      BridgeLine obfs4 = relay.bridgeLines().stream().filter(l -> l.kind() == BridgeLine.Kind.OBFS4).findFirst().orElseThrow();
      int web = relay.webAddress().getPort();
      String pin = " pin=" + java.util.Base64.getUrlEncoder().withoutPadding().encodeToString(ws.pin().orElseThrow());
      String at = HostPort.format(lineHost, web);
      return BridgeLine.parse(switch (carrier) {
        case "direct" -> "direct " + HostPort.format(lineHost, server.address().port());
        case "ws" -> "ws ws://" + at + ws.path();
        case "wss" -> "ws wss://" + at + ws.path() + pin;
        case "poll" -> "poll http://" + at + ws.path();
        case "polls" -> "poll https://" + at + ws.path() + pin;
        case "obfs4" -> "obfs4 " + HostPort.format(lineHost, obfs4.port()) + " cert=" + obfs4.params().get("cert")
            + " iat-mode=" + obfs4.params().get("iat-mode");
        default -> throw new IllegalArgumentException(carrier);
      });
    }
  }

  @BeforeAll
  void startWorlds() throws Exception {
    obfs4proxy = ExternalTools.require("obfs4proxy", "obfs4proxy");
    v4 = world("127.0.0.1", "v4");
    v6 = world("::1", "v6");
  }

  private World world(String host, String name) throws Exception {
    RunningServer server = closer.add(RunningServer.configured(dir.resolve(name + "-server"), b -> b.listen(host, 0)));
    Relay relay = closer.add(Relay.builder()
        .dataDirectory(dir.resolve(name + "-relay"))
        .listen(new InetSocketAddress(host, 0))
        .upstream(new InetSocketAddress(host, server.address().port()))
        .carriers(EnumSet.allOf(Carrier.class))
        .obfs4proxy(obfs4proxy)
        .start());
    Censor blocked = closer.add(Censor.start(new InetSocketAddress(host, server.address().port())).block(Rule.BLOCK_PORT));
    return new World(host, server, relay, blocked);
  }

  @AfterAll
  void closeAll() throws Exception {
    closer.close();
  }

  static Stream<Arguments> carriersAndProxies() {
    List<Arguments> all = new ArrayList<>();
    for (String carrier : List.of("direct", "ws", "wss", "poll", "polls", "obfs4")) {
      for (String proxy : List.of("none", "socks5", "http")) {
        all.add(Arguments.of(carrier, proxy));
      }
    }
    return all.stream();
  }

  private FerryClient client(String name, Optional<NamingProxy> proxy) {
    byte[] key = new byte[32];
    new SecureRandom().nextBytes(key);
    FerryClient.Builder b = FerryClient.builder().dataDirectory(dir.resolve(name)).storageKey(key).obfs4proxy(obfs4proxy);
    proxy.ifPresent(p -> b.proxy(p.uri()));
    return closer.add(b.build());
  }

  private Optional<NamingProxy> proxy(String kind, String mapsTo) throws Exception {
    if (kind.equals("none")) {
      return Optional.empty();
    }
    return Optional.of(closer.add(new NamingProxy(NamingProxy.Kind.valueOf(kind.toUpperCase(java.util.Locale.ROOT)),
        Map.of(NAME, InetAddress.getByName(mapsTo)))));
  }

  @ParameterizedTest(name = "{0} via {1}")
  @MethodSource("carriersAndProxies")
  void aNameOnlyTheProxyKnowsIsResolvedByTheProxyAlone(String carrier, String proxyKind) throws Exception {
    assertThrows(UnknownHostException.class, () -> InetAddress.getByName(NAME), "the system cannot resolve it");
    Optional<NamingProxy> proxy = proxy(proxyKind, "127.0.0.1");
    // Without a proxy there is no one else to ask: the system's name for loopback stands in.
    String host = proxy.isPresent() ? NAME : "localhost";
    FerryClient c = client("name-" + carrier + "-" + proxyKind, proxy);
    List<String> line = List.of(v4.line(carrier, host).toString());
    if (carrier.equals("obfs4") && proxyKind.equals("http")) {
      FerryException e = assertThrows(FerryException.class, () -> c.initialize(v4.home(), "", line));
      assertTrue(e.getMessage().contains("use a SOCKS5 proxy, or an obfs4 line with an IP address"), e.getMessage());
      return;
    }
    c.initialize(v4.home(), "", line);
    assertEquals(carrierWord(carrier), c.networkStatus().get(0).inUse().map(l -> l.split(" ")[0]).orElse("none"));
    proxy.ifPresent(p -> assertTrue(p.requests.stream().anyMatch(r -> r.contains(NAME)),
        "the proxy was asked for the name: " + p.requests));
  }

  @ParameterizedTest(name = "{0} via {1}")
  @MethodSource("carriersAndProxies")
  void everyCarrierReachesARelayOnIpv6Loopback(String carrier, String proxyKind) throws Exception {
    Optional<NamingProxy> proxy = proxy(proxyKind, "::1");
    FerryClient c = client("v6-" + carrier + "-" + proxyKind, proxy);
    c.initialize(v6.home(), "", List.of(v6.line(carrier, "::1").toString()));
    assertEquals(carrierWord(carrier), c.networkStatus().get(0).inUse().map(l -> l.split(" ")[0]).orElse("none"));
    // An address goes as an address: SOCKS5 ATYP 4, or [::1] in an HTTP request.
    proxy.ifPresent(p -> assertTrue(p.requests.stream().anyMatch(r -> r.equals("ipv6 ::1") || r.contains("[::1]:")),
        "the proxy was asked for [::1]: " + p.requests));
    proxy.ifPresent(p -> assertTrue(p.requests.stream().noneMatch(r -> r.startsWith("domain ::")),
        "never as a name: " + p.requests));
  }

  private static String carrierWord(String carrier) {
    return switch (carrier) {
      case "wss" -> "ws";
      case "polls" -> "poll";
      default -> carrier;
    };
  }
}
