package org.ferry.it.federation;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArrayList;
import org.ferry.it.Closer;
import org.ferry.it.PrometheusText;
import org.ferry.proto.ServerAddress;
import org.ferry.sdk.Contact;
import org.ferry.sdk.FerryClient;
import org.ferry.sdk.FerryException;
import org.ferry.sdk.FerryListener;
import org.ferry.sdk.ReceivedMessage;
import org.ferry.server.FerryServer;
import org.ferry.server.testing.MutableClock;
import org.ferry.server.testing.Ports;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Three real servers on their own loopback addresses, clients on each on addresses of their
 * own: everything between servers goes server to server, and no server but a client's home
 * ever sees the client's address.
 *
 * <p>Each server listens on 127.0.0.1N and makes its federation connections from there; users
 * reach it at 127.0.0.2N, through a {@link RecordingProxy} that notes every connection's source
 * address: what that server sees. Clients connect from 127.0.0.3M.
 */
class FederationTest {
  private static final Duration BOUND = Duration.ofSeconds(90);

  @TempDir Path dir;
  private final Closer closer = new Closer();
  private final Map<String, Node> nodes = new HashMap<>();
  private final Map<String, InetAddress> clientAddresses = new HashMap<>();

  @AfterEach
  void closeAll() throws Exception {
    closer.close();
  }

  private <T extends AutoCloseable> T add(T c) {
    return closer.add(c);
  }

  /** A server: where it listens, where users reach it, and what the proxy in front saw. */
  private record Node(String name, FerryServer server, InetAddress own, ServerAddress address, RecordingProxy proxy) {}

  private Node server(String name, int n, Clock clock) throws Exception {
    String own = "127.0.0.1" + n;
    String shown = "127.0.0.2" + n;
    int port = Ports.belowEphemeral(own, shown);
    FerryServer.Builder b = FerryServer.builder()
        .dataDirectory(dir.resolve(name))
        .listen(own, port)
        .advertisedHost(shown)
        .federationBind(InetAddress.getByName(own))
        .metricsListen(new InetSocketAddress(own, 0))
        .sweepInterval(Duration.ofMillis(200))
        .clock(clock);
    if (clock instanceof MutableClock moved) {
      b.ticker(moved::nanoTime);
    }
    FerryServer server = add(b.start());
    RecordingProxy proxy = add(RecordingProxy.start(
        new InetSocketAddress(shown, port), new InetSocketAddress(own, port)));
    Node node = new Node(name, server, InetAddress.getByName(own), server.address(), proxy);
    nodes.put(name, node);
    return node;
  }

  private FerryClient user(String name, int n, Node home) throws Exception {
    byte[] key = new byte[32];
    new SecureRandom().nextBytes(key);
    InetAddress from = InetAddress.getByName("127.0.0.3" + n);
    clientAddresses.put(name, from);
    FerryClient c = add(FerryClient.builder()
        .dataDirectory(dir.resolve("user-" + name))
        .storageKey(key)
        .callTimeout(Duration.ofSeconds(10))
        .localAddress(from)
        .build());
    c.initialize(home.address());
    return c;
  }

  /** Everything a client hears. */
  private static final class Events implements FerryListener {
    final List<ReceivedMessage> messages = new CopyOnWriteArrayList<>();
    final List<String> accepted = new CopyOnWriteArrayList<>();
    final List<String> delivered = new CopyOnWriteArrayList<>();
    final Map<String, FerryException> failed = new java.util.concurrent.ConcurrentHashMap<>();

    @Override
    public void onMessage(ReceivedMessage message) {
      messages.add(message);
    }

    @Override
    public void onSendAccepted(String contactLabel, String messageId) {
      accepted.add(messageId);
    }

    @Override
    public void onSendDelivered(String contactLabel, String messageId) {
      delivered.add(messageId);
    }

    @Override
    public void onSendFailed(String contactLabel, String messageId, FerryException failure) {
      failed.put(messageId, failure);
    }

    List<String> texts() {
      return messages.stream().map(m -> m.contactLabel() + ":" + m.text()).toList();
    }
  }

  /** Alice on A, Bob on B, Carol on C, and Dave on A too; each pair of servers has a pair of contacts. */
  private Map<String, FerryClient> threeServersWithContactsAcross() throws Exception {
    Node a = server("a", 1, Clock.systemUTC());
    Node b = server("b", 2, Clock.systemUTC());
    Node c = server("c", 3, Clock.systemUTC());
    Map<String, FerryClient> users = new HashMap<>();
    users.put("alice", user("alice", 1, a));
    users.put("bob", user("bob", 2, b));
    users.put("carol", user("carol", 3, c));
    users.put("dave", user("dave", 4, a));
    // The invitation is always taken on the inviter's server, through the acceptor's home.
    users.get("bob").acceptInvitation(users.get("alice").createInvitation("bob").uri(), "alice");
    users.get("carol").acceptInvitation(users.get("bob").createInvitation("carol").uri(), "bob");
    users.get("alice").acceptInvitation(users.get("carol").createInvitation("alice").uri(), "carol");
    users.get("dave").acceptInvitation(users.get("alice").createInvitation("dave").uri(), "alice");
    return users;
  }

  /** Sends one message along each contact, both ways, and checks each arrives once. */
  private void talkAlongEveryContact(Map<String, FerryClient> users) {
    String[][] contacts = {{"alice", "bob"}, {"bob", "carol"}, {"carol", "alice"}, {"alice", "dave"}};
    Map<String, Events> events = new HashMap<>();
    for (Map.Entry<String, FerryClient> u : users.entrySet()) {
      Events e = new Events();
      events.put(u.getKey(), e);
      u.getValue().addListener(e);
      u.getValue().start();
    }
    // The inviters learn of each acceptance from the acceptor's first message (across servers).
    for (String[] pair : contacts) {
      for (String side : pair) {
        FerryClient u = users.get(side);
        String other = side.equals(pair[0]) ? pair[1] : pair[0];
        await().atMost(BOUND).until(() -> u.contact(other).orElseThrow().state() == Contact.State.ESTABLISHED);
      }
    }
    Map<String, List<String>> expected = new HashMap<>();
    Map<String, List<String>> expectedIds = new HashMap<>();
    for (String[] pair : contacts) {
      for (int way = 0; way < 2; way++) {
        String from = pair[way];
        String to = pair[1 - way];
        String text = "from " + from + " to " + to;
        String id;
        try {
          id = users.get(from).sendAsync(to, text).get(BOUND.toSeconds(), java.util.concurrent.TimeUnit.SECONDS);
        } catch (Exception e) {
          throw new AssertionError(from + " could not send to " + to, e);
        }
        expected.computeIfAbsent(to, k -> new ArrayList<>()).add(from + ":" + text);
        expectedIds.computeIfAbsent(from, k -> new ArrayList<>()).add(id);
      }
    }
    for (String name : users.keySet()) {
      Events e = events.get(name);
      await().atMost(BOUND).untilAsserted(() -> {
        assertEquals(new HashSet<>(expected.get(name)), new HashSet<>(e.texts()), name + " got every message");
        assertTrue(e.delivered.containsAll(expectedIds.get(name)),
            name + " heard that each of its messages reached the contact's server: " + e.delivered);
      });
      assertEquals(expected.get(name).size(), e.messages.size(), name + " got each message once: " + e.texts());
      assertTrue(e.failed.isEmpty(), name + ": " + e.failed);
    }
  }

  @Test
  void invitationsSessionsAndMessagesCrossBetweenThreeServersInEveryDirection() throws Exception {
    Map<String, FerryClient> users = threeServersWithContactsAcross();
    // Blocking sends too: the first message across each pair starts its session.
    assertFalse(users.get("bob").send("alice", "hello alice").isEmpty());
    assertEquals(1, users.get("alice").receive(BOUND, 1, m -> assertEquals("hello alice", m.text())));
    talkAlongEveryContact(users);
    // Nothing waits anywhere any more.
    for (FerryClient u : users.values()) {
      await().atMost(BOUND).until(() -> u.pendingSends() == 0);
    }
  }

  @Test
  void noServerButAClientsHomeServerEverSeesTheClientsAddress() throws Exception {
    Map<String, FerryClient> users = threeServersWithContactsAcross();
    talkAlongEveryContact(users);
    Map<String, String> homeOf = Map.of("alice", "a", "dave", "a", "bob", "b", "carol", "c");
    Set<InetAddress> serverAddresses = new HashSet<>();
    nodes.values().forEach(n -> serverAddresses.add(n.own()));
    for (Node node : nodes.values()) {
      Set<InetAddress> seen = node.proxy().seen();
      for (Map.Entry<String, InetAddress> client : clientAddresses.entrySet()) {
        boolean home = homeOf.get(client.getKey()).equals(node.name());
        assertEquals(home, seen.contains(client.getValue()),
            "server " + node.name() + (home ? " must" : " must never") + " see " + client.getKey() + "'s address; it saw "
                + seen);
      }
      Set<InetAddress> unexplained = new HashSet<>(seen);
      unexplained.removeAll(clientAddresses.values());
      unexplained.removeAll(serverAddresses);
      assertTrue(unexplained.isEmpty(), "server " + node.name() + " saw only clients and servers: " + unexplained);
      // And the other servers did come, from their own addresses: the traffic went server to server.
      Set<InetAddress> peers = new HashSet<>(seen);
      peers.retainAll(serverAddresses);
      peers.remove(node.own());
      assertEquals(2, peers.size(), "server " + node.name() + " heard from both other servers: " + seen);
    }
  }

  @Test
  void whenAnItemsTtlRunsOutWhileTheDestinationIsDownTheSendersSdkHearsItFailedAndNothingIsLeftQueued()
      throws Exception {
    MutableClock clock = new MutableClock(Instant.now());
    Node a = server("a", 1, clock);
    Node b = server("b", 2, Clock.systemUTC());
    FerryClient alice = user("alice", 1, a);
    FerryClient bob = user("bob", 2, b);
    bob.acceptInvitation(alice.createInvitation("bob").uri(), "alice");
    bob.send("alice", "session up");
    assertEquals(1, alice.receive(BOUND, 1, m -> { }));
    // Alice's client has B's routing key from this first send: without it, nothing would leave
    // her client while B is down (fail closed).
    alice.send("bob", "key fetched");
    Events events = new Events();
    alice.addListener(events);
    alice.start();
    b.server().close();
    String id = alice.sendAsync("bob", "this one never arrives").get(BOUND.toSeconds(), java.util.concurrent.TimeUnit.SECONDS);
    await().atMost(BOUND).until(() -> events.accepted.contains(id));
    assertEquals(1, outboundItems(a), "the home server holds the item for B");
    clock.advance(FerryServer.DEFAULT_TTL.plusMinutes(1));
    await().atMost(BOUND).until(() -> events.failed.containsKey(id));
    assertEquals(FerryException.Reason.EXPIRED, events.failed.get(id).reason(), events.failed.get(id).getMessage());
    assertFalse(events.delivered.contains(id));
    assertEquals(0, outboundItems(a), "nothing is left in the outbound queue");
  }

  /** Items the server holds for other servers, from its metrics (ferry_federation_outbound_items). */
  private static long outboundItems(Node node) throws Exception {
    return Math.round(PrometheusText.sum(node.server().metricsAddress().orElseThrow(),
        "ferry_federation_outbound_items"));
  }
}
