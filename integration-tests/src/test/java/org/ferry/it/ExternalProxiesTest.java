package org.ferry.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.EnumSet;
import java.util.List;
import java.util.Optional;
import org.ferry.it.censor.Censor;
import org.ferry.proto.BridgeLine;
import org.ferry.proto.ServerAddress;
import org.ferry.relay.Carrier;
import org.ferry.relay.Relay;
import org.ferry.relay.internal.tls.TlsIdentity;
import org.ferry.sdk.FerryClient;
import org.ferry.sdk.MessageListener;
import org.ferry.sdk.ReceivedMessage;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Carriers through the real programs people meet: Debian's nginx terminating TLS in front of a
 * relay, tinyproxy as an HTTP proxy that allows no CONNECT to odd ports (so no WebSocket either),
 * and microsocks as a SOCKS5 proxy (as Tor's SOCKS port would be). The server's own port is
 * blocked by a {@link Censor} in each case, and a real message goes through.
 */
class ExternalProxiesTest {
  @TempDir Path dir;

  private final Closer closer = new Closer();
  private RunningServer server;
  private Relay relay;
  private Censor direct;

  @BeforeEach
  void start() throws Exception {
    BridgedServer net = closer.add(new BridgedServer(dir));
    server = net.server;
    relay = net.relay;
    direct = net.direct;
  }

  @AfterEach
  void closeAll() throws Exception {
    closer.close();
  }

  private String secretPath() {
    return relay.bridgeLines().get(0).path();
  }

  private FerryClient user(String name, List<BridgeLine> lines, String proxy) {
    byte[] key = new byte[32];
    new SecureRandom().nextBytes(key);
    FerryClient.Builder b = FerryClient.builder().dataDirectory(dir.resolve(name)).storageKey(key);
    if (proxy != null) {
      b.proxy(proxy);
    }
    FerryClient c = closer.add(b.build());
    c.initialize(new ServerAddress("127.0.0.1", direct.port(), server.address().fingerprint()), "",
        lines.stream().map(BridgeLine::toString).toList());
    return c;
  }

  /**
   * Alice (no proxy) invites Bob (behind the proxy); Bob's message reaches her. The server's own
   * port is blocked for both, so every call goes over the lines; Bob gets them from the invitation
   * as well as at init.
   */
  private String bobReachesAlice(List<BridgeLine> lines, String proxy) {
    FerryClient alice = user("alice", lines, null);
    FerryClient bob = user("bob", lines, proxy);
    bob.acceptInvitation(alice.createInvitation("bob").uri(), "alice");
    bob.send("alice", "through the proxy");
    List<String> got = new ArrayList<>();
    alice.receive(Duration.ofMillis(500), new MessageListener() {
      @Override
      public void onMessage(ReceivedMessage m) {
        got.add(m.text());
      }
    });
    assertEquals(List.of("through the proxy"), got);
    return bob.networkStatus().get(0).inUse().map(l -> l.split(" ")[0]).orElse("none");
  }

  @Test
  void webSocketThroughNginxTerminatingTls() throws Exception {
    String nginx = ExternalTools.require("nginx", "nginx");
    Path ng = Files.createDirectories(dir.resolve("nginx"));
    Path tmp = Files.createDirectories(ng.resolve("tmp"));
    tmp.toFile().setWritable(true, false);
    TlsIdentity cert = TlsIdentity.loadOrCreate(ng, "nginx", "localhost", new SecureRandom());
    int port = ExternalProcess.freePort();
    Files.writeString(ng.resolve("nginx.conf"), """
        worker_processes 1;
        daemon off;
        pid %1$s/nginx.pid;
        error_log %1$s/error.log warn;
        events { worker_connections 128; }
        http {
          access_log off;
          client_body_temp_path %2$s; proxy_temp_path %2$s; fastcgi_temp_path %2$s;
          uwsgi_temp_path %2$s; scgi_temp_path %2$s;
          server {
            listen 127.0.0.1:%3$d ssl;
            ssl_certificate %1$s/nginx-cert.pem;
            ssl_certificate_key %1$s/nginx-key.pem;
            location = %4$s {
              proxy_pass http://127.0.0.1:%5$d;
              proxy_http_version 1.1;
              proxy_set_header Upgrade $http_upgrade;
              proxy_set_header Connection "upgrade";
              proxy_read_timeout 1h;
              proxy_buffering off;
            }
            location / { return 404; }
          }
        }
        """.formatted(ng, tmp, port, secretPath(), relay.webAddress().getPort()));
    closer.add(ExternalProcess.start(List.of(nginx, "-p", ng.toString(), "-c", ng.resolve("nginx.conf").toString()),
        ng.resolve("stdout.log"), port));
    byte[] pin = ServerAddress.fingerprintOf(cert.certificate().getPublicKey());
    BridgeLine viaNginx = BridgeLine.parse("ws wss://127.0.0.1:" + port + secretPath()
        + " pin=" + Base64.getUrlEncoder().withoutPadding().encodeToString(pin));
    assertEquals("ws", bobReachesAlice(List.of(viaNginx), null));
  }

  @Test
  void pollingThroughTinyproxyThatRefusesConnectAndWebSockets() throws Exception {
    int port = ExternalTools.startTinyproxy(dir, closer);
    int web = relay.webAddress().getPort();
    List<BridgeLine> lines = List.of(
        new BridgeLine(BridgeLine.Kind.WS, "127.0.0.1", web, false, secretPath(), Optional.empty(), java.util.Map.of()),
        new BridgeLine(BridgeLine.Kind.POLL, "127.0.0.1", web, false, secretPath(), Optional.empty(), java.util.Map.of()));
    assertEquals("poll", bobReachesAlice(lines, "http://127.0.0.1:" + port));
  }

  @Test
  void webSocketThroughASocks5Proxy() throws Exception {
    String microsocks = ExternalTools.require("microsocks", "microsocks");
    int port = ExternalProcess.freePort();
    closer.add(ExternalProcess.start(List.of(microsocks, "-i", "127.0.0.1", "-p", Integer.toString(port)),
        dir.resolve("microsocks.log"), port));
    // A counting hop in front of the proxy shows that Bob's traffic went through it.
    Censor socksHop = closer.add(Censor.start(new InetSocketAddress("127.0.0.1", port)));
    BridgeLine ws = new BridgeLine(BridgeLine.Kind.WS, "127.0.0.1", relay.webAddress().getPort(), false,
        secretPath(), Optional.empty(), java.util.Map.of());
    assertEquals("ws", bobReachesAlice(List.of(ws), "socks5://127.0.0.1:" + socksHop.port()));
    assertTrue(socksHop.connections() > 0, "Bob's connections went through the SOCKS5 proxy");
  }

  @Test
  void obfs4ThroughASocks5Proxy() throws Exception {
    String obfs4proxy = ExternalTools.require("obfs4proxy", "obfs4proxy");
    String microsocks = ExternalTools.require("microsocks", "microsocks");
    Relay obfs4Relay = closer.add(Relay.builder()
        .dataDirectory(dir.resolve("obfs4-relay"))
        .listen(new InetSocketAddress("127.0.0.1", 0))
        .upstream(new InetSocketAddress("127.0.0.1", server.address().port()))
        .carriers(EnumSet.of(Carrier.OBFS4))
        .obfs4proxy(obfs4proxy)
        .start());
    int port = ExternalProcess.freePort();
    closer.add(ExternalProcess.start(List.of(microsocks, "-i", "127.0.0.1", "-p", Integer.toString(port)),
        dir.resolve("microsocks.log"), port));
    Censor socksHop = closer.add(Censor.start(new InetSocketAddress("127.0.0.1", port)));
    // obfs4proxy itself dials out through the proxy (TOR_PT_PROXY).
    assertEquals("obfs4", bobReachesAlice(obfs4Relay.bridgeLines(), "socks5://127.0.0.1:" + socksHop.port()));
    assertTrue(socksHop.connections() > 0, "obfs4proxy's connections went through the SOCKS5 proxy");
  }
}
