package org.ferry.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Optional;
import java.util.stream.IntStream;
import org.ferry.it.censor.Censor;
import org.ferry.it.censor.Censor.Rule;
import org.ferry.proto.BridgeLine;
import org.ferry.proto.ServerAddress;
import org.ferry.relay.Carrier;
import org.ferry.relay.Relay;
import org.ferry.sdk.FerryClient;
import org.ferry.sdk.MessageListener;
import org.ferry.sdk.NetworkStatus;
import org.ferry.sdk.ReceivedMessage;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Two users whose every connection crosses a censor (a {@link Censor} in front of the server's
 * port and of each of a relay's carriers) exchange real messages, and the dialer finds, by
 * itself, the carrier the censor lets through.
 */
class CarrierFallbackTest {
  @TempDir Path dir;

  private final Closer closer = new Closer();
  private RunningServer server;
  private Relay relay;
  private Censor direct;
  private Censor web;
  private Censor obfs4;

  private void start(boolean withObfs4) throws Exception {
    server = closer.add(new RunningServer(dir.resolve("server")));
    relay = closer.add(Relay.builder()
        .dataDirectory(dir.resolve("relay"))
        .listen(new InetSocketAddress("127.0.0.1", 0))
        .upstream(new InetSocketAddress("127.0.0.1", server.address().port()))
        .carriers(withObfs4 ? java.util.EnumSet.allOf(Carrier.class) : java.util.EnumSet.of(Carrier.WS, Carrier.POLL))
        .obfs4proxy(withObfs4 ? ExternalTools.require("obfs4proxy", "obfs4proxy") : "obfs4proxy")
        .start());
    direct = closer.add(Censor.start(new InetSocketAddress("127.0.0.1", server.address().port())));
    web = closer.add(Censor.start(relay.webAddress()));
    if (withObfs4) {
      obfs4 = closer.add(Censor.start(relay.obfs4Address().orElseThrow()));
    }
  }

  @AfterEach
  void closeAll() throws Exception {
    closer.close();
  }

  /** The server as censored users know it: its address behind the censor. */
  private ServerAddress censoredServer() {
    return new ServerAddress("127.0.0.1", direct.port(), server.address().fingerprint());
  }

  /** The relay's line of {@code kind}, pointed at its censor; in the clear unless {@code tls}. */
  private BridgeLine line(BridgeLine.Kind kind, boolean tls) {
    BridgeLine printed = relay.bridgeLines().stream().filter(l -> l.kind() == kind).findFirst().orElseThrow();
    int port = kind == BridgeLine.Kind.OBFS4 ? obfs4.port() : web.port();
    return new BridgeLine(kind, "127.0.0.1", port, tls, printed.path(),
        tls ? printed.pin() : Optional.empty(), printed.params());
  }

  private FerryClient user(String name, List<BridgeLine> lines) {
    FerryClient c = closer.add(TestClients.open(dir, name));
    c.initialize(censoredServer(), "", lines.stream().map(BridgeLine::toString).toList());
    return c;
  }

  private static final class Inbox implements MessageListener {
    final List<String> texts = Collections.synchronizedList(new ArrayList<>());

    @Override
    public void onMessage(ReceivedMessage m) {
      texts.add(m.text());
    }
  }

  /** Alice and Bob meet and talk both ways; returns the carrier kind each used at the end. */
  private List<String> converse(List<BridgeLine> lines) {
    FerryClient alice = user("alice", lines);
    FerryClient bob = user("bob", lines);
    bob.acceptInvitation(alice.createInvitation("bob").uri(), "alice");
    alice.receive(Duration.ofMillis(300), new Inbox());
    bob.send("alice", "hello from inside");
    Inbox aliceInbox = new Inbox();
    alice.receive(Duration.ofMillis(300), aliceInbox);
    assertEquals(List.of("hello from inside"), aliceInbox.texts);
    alice.send("bob", "heard you");
    Inbox bobInbox = new Inbox();
    bob.receive(Duration.ofMillis(300), bobInbox);
    assertEquals(List.of("heard you"), bobInbox.texts);
    return List.of(carrierInUse(alice), carrierInUse(bob));
  }

  private static String carrierInUse(FerryClient c) {
    NetworkStatus home = c.networkStatus().get(0);
    return home.inUse().map(l -> l.split(" ")[0]).orElse("none");
  }

  @Test
  void directDroppedFallsBackToWebSocket() throws Exception {
    start(false);
    direct.block(Rule.DROP);
    List<String> used = converse(List.of(line(BridgeLine.Kind.WS, false), line(BridgeLine.Kind.POLL, false)));
    assertEquals(List.of("ws", "ws"), used);
    assertTrue(direct.blocked() > 0, "the censor saw the direct attempts");
  }

  @Test
  void webSocketUpgradesBlockedFallsBackToPolling() throws Exception {
    start(false);
    direct.block(Rule.BLOCK_PORT);
    web.block(Rule.WEBSOCKET_UPGRADE);
    List<String> used = converse(List.of(line(BridgeLine.Kind.WS, false), line(BridgeLine.Kind.POLL, false)));
    assertEquals(List.of("poll", "poll"), used);
    assertTrue(web.blocked() > 0, "the censor blocked WebSocket upgrades");
  }

  @Test
  void everyTlsAndHttpPatternBlockedFallsBackToObfs4() throws Exception {
    start(true);
    Rule[] everything = {Rule.TLS_CLIENT_HELLO, Rule.HTTP2_PREFACE, Rule.WEBSOCKET_UPGRADE, Rule.HTTP_REQUEST};
    direct.block(everything);
    web.block(everything);
    obfs4.block(everything);
    List<String> used = converse(List.of(
        line(BridgeLine.Kind.WS, true), line(BridgeLine.Kind.POLL, true),
        line(BridgeLine.Kind.WS, false), line(BridgeLine.Kind.POLL, false),
        line(BridgeLine.Kind.OBFS4, false)));
    assertEquals(List.of("obfs4", "obfs4"), used);
    assertEquals(0, obfs4.blocked(), "obfs4 looks like none of the patterns");
    assertTrue(direct.blocked() > 0 && web.blocked() > 0);
  }

  @Test
  void carrierCutMidStreamIsRedialledWithoutLossOrDuplicates() throws Exception {
    start(false);
    direct.block(Rule.BLOCK_PORT);
    List<BridgeLine> lines = List.of(line(BridgeLine.Kind.WS, false), line(BridgeLine.Kind.POLL, false));
    FerryClient alice = user("alice", lines);
    FerryClient bob = user("bob", lines);
    bob.acceptInvitation(alice.createInvitation("bob").uri(), "alice");
    alice.receive(Duration.ofMillis(300), new Inbox());
    // From here on, the next four connections through the relay's port die after 12 KiB.
    web.resetAfter(12 * 1024, 4);
    List<String> sent = IntStream.range(0, 30).mapToObj(i -> "message " + i).toList();
    for (String text : sent) {
      alice.send("bob", text);
    }
    Inbox inbox = new Inbox();
    while (inbox.texts.size() < sent.size()) {
      int got = bob.receive(Duration.ofMillis(500), inbox);
      if (got == 0) {
        break;
      }
    }
    assertEquals(sent, inbox.texts, "every message once, in order");
    assertTrue(web.cuts() >= 2, "carriers were cut under both users: " + web.cuts());
  }
}
