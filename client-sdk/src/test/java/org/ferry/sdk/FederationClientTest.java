package org.ferry.sdk;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import com.google.protobuf.InvalidProtocolBufferException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.function.UnaryOperator;
import org.ferry.proto.ErrorReasons;
import org.ferry.proto.RoutingKeys;
import org.ferry.proto.RoutingSeal;
import org.ferry.proto.ServerAddress;
import org.ferry.proto.v1.ForwardOutcome;
import org.ferry.proto.v1.ForwardRequest;
import org.ferry.proto.v1.Routing;
import org.ferry.proto.v1.RoutingKey;
import org.ferry.proto.v1.SignedRoutingKey;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Federation as the SDK sees it, against in-process fake servers (the real server side of
 * Forwarding is built separately): Alice's home is server A, Bob's is server B.
 */
class FederationClientTest {
  @TempDir Path dir;

  private FakeFederation fed;
  private FakeFederation.FakeServer a;
  private FakeFederation.FakeServer b;
  private final Set<ServerAddress> aliceOpened = ConcurrentHashMap.newKeySet();
  private final Set<ServerAddress> bobOpened = ConcurrentHashMap.newKeySet();
  private FerryClient alice;
  private FerryClient bob;

  @BeforeEach
  void setUp() {
    fed = new FakeFederation();
    a = fed.server("a.example");
    b = fed.server("b.example");
    alice = fed.client(dir.resolve("alice"), aliceOpened);
    alice.initialize(a.address);
    bob = fed.client(dir.resolve("bob"), bobOpened);
    bob.initialize(b.address);
  }

  @AfterEach
  void tearDown() {
    alice.close();
    bob.close();
    fed.close();
  }

  private static List<String> texts(FerryClient c, int n) {
    List<String> got = Collections.synchronizedList(new ArrayList<>());
    await().atMost(Duration.ofSeconds(20)).until(() -> {
      c.receive(Duration.ofMillis(100), n - got.size(), m -> got.add(m.contactLabel() + ": " + m.text()));
      return got.size() >= n;
    });
    return got;
  }

  @Test
  void invitationsAndMessagesAcrossServersGoOnlyThroughEachClientsHomeServer() throws Exception {
    FakeFederation.connect(bob, "alice", alice, "bob");
    alice.send("bob", "hello from A");
    assertEquals(List.of("alice: hello from A"), texts(bob, 1));
    bob.send("alice", "hello from B");
    assertEquals(List.of("bob: hello from B"), texts(alice, 1));

    assertEquals(Set.of(a.address), aliceOpened, "Alice connected to a server other than her home");
    assertEquals(Set.of(b.address), bobOpened, "Bob connected to a server other than his home");
    // Alice's take of Bob's invitation and her sends to Bob went to A for B, sealed to B's key.
    assertEquals(1, a.takes.size());
    assertEquals(b.address.toString(), a.takes.get(0).getDestination());
    assertTrue(a.forwards.size() >= 2, "contact card and message: " + a.forwards.size());
    for (ForwardRequest f : a.forwards) {
      assertEquals(b.address.toString(), f.getDestination());
      assertEquals(RoutingSeal.SEALED_LENGTH, f.getSealedRouting().size());
      Routing routing = b.open(f.getRoutingKeyId(), f.getSealedRouting(),
          RoutingSeal.sendBinding(f.getItemId().toByteArray(), f.getBody().toByteArray()));
      assertTrue(routing.hasSend());
      assertEquals(32, routing.getSend().getMailboxId().size());
      assertEquals(32, routing.getSend().getSendCapability().size());
      // What A sees does not name the mailbox.
      assertFalse(contains(f.toByteString(), routing.getSend().getMailboxId()));
      assertFalse(contains(f.toByteString(), routing.getSend().getSendCapability()));
      // A seal opens only with the destination's key.
      assertThrows(java.security.GeneralSecurityException.class, () -> a.open(f.getRoutingKeyId(),
          f.getSealedRouting(), RoutingSeal.sendBinding(f.getItemId().toByteArray(), f.getBody().toByteArray())));
    }
    // Bob's reply went the other way, through B.
    assertTrue(b.forwards.stream().allMatch(f -> f.getDestination().equals(a.address.toString())));
    assertFalse(b.forwards.isEmpty());
  }

  private static boolean contains(ByteString haystack, ByteString needle) {
    byte[] h = haystack.toByteArray();
    byte[] n = needle.toByteArray();
    outer:
    for (int i = 0; i + n.length <= h.length; i++) {
      for (int j = 0; j < n.length; j++) {
        if (h[i + j] != n[j]) {
          continue outer;
        }
      }
      return true;
    }
    return false;
  }

  /** Forgeries of B's routing key that A (or someone between A and B) could hand over. */
  private List<UnaryOperator<SignedRoutingKey>> forgeries() {
    java.security.KeyPair mallory = FakeFederation.ecKey();
    RoutingSeal.KeyPair malloryRouting = RoutingSeal.generate(new java.security.SecureRandom());
    FakeFederation.FakeServer c = fed.server("c.example");
    return List.of(
        // Mallory's routing key, signed by Mallory's own key: not the key B's address pins.
        k -> RoutingKeys.sign(withPublicKey(k, malloryRouting.publicKey()), mallory.getPrivate(), mallory.getPublic()),
        // Mallory's routing key under B's public key with B's signature over the real one.
        k -> k.toBuilder().setRoutingKey(withPublicKey(k, malloryRouting.publicKey()).toByteString()).build(),
        // The genuine, well-signed key of another server (C), for B's fingerprint.
        k -> c.signedRoutingKey(),
        // B's own key, signed by B, but run out long ago.
        k -> RoutingKeys.sign(parse(k).toBuilder().setNotAfter(1).setNotBefore(0).build(),
            b.tlsKey.getPrivate(), b.tlsKey.getPublic()));
  }

  private static RoutingKey parse(SignedRoutingKey k) {
    try {
      return RoutingKey.parseFrom(k.getRoutingKey());
    } catch (InvalidProtocolBufferException e) {
      throw new AssertionError(e);
    }
  }

  private static RoutingKey withPublicKey(SignedRoutingKey k, byte[] publicKey) {
    return parse(k).toBuilder().setPublicKey(ByteString.copyFrom(publicKey)).build();
  }

  @Test
  void aRoutingKeyThatDoesNotVerifyStopsTheSendBeforeAnythingLeaves() {
    FakeFederation.connect(bob, "alice", alice, "bob");
    for (UnaryOperator<SignedRoutingKey> forgery : forgeries()) {
      // The verified key kept since the handshake runs out: the next send fetches one again.
      fed.clock.advance(Duration.ofDays(2));
      a.tamper = forgery;
      int forwards = a.forwards.size();
      int keyRequests = a.keyRequests.size();
      int atB = b.waiting();
      FerryException e = assertThrows(FerryException.class, () -> alice.send("bob", "secret"));
      assertEquals(FerryException.Reason.ROUTING_KEY_UNVERIFIED, e.reason(), e.getMessage());
      assertTrue(e.getMessage().contains("nothing was sent"), e.getMessage());
      assertEquals(keyRequests + 1, a.keyRequests.size(), "the key was fetched through the home server");
      assertEquals(forwards, a.forwards.size(), "an item left without a verified routing key");
      assertEquals(atB, b.waiting());
    }
    // With the genuine key again, the same contact is reached: the failed sends used nothing up.
    a.tamper = UnaryOperator.identity();
    alice.send("bob", "after");
    assertEquals(List.of("alice: after"), texts(bob, 1));
  }

  @Test
  void anInvitationOnAnotherServerIsNotTakenWithoutAVerifiedRoutingKey() {
    a.tamper = forgeries().get(0);
    Invitation invitation = bob.createInvitation("alice");
    FerryException e = assertThrows(FerryException.class, () -> alice.acceptInvitation(invitation.uri(), "bob"));
    assertEquals(FerryException.Reason.ROUTING_KEY_UNVERIFIED, e.reason(), e.getMessage());
    assertTrue(a.takes.isEmpty(), "a take left without a verified routing key");
    assertEquals(Set.of(a.address), aliceOpened);
    // Accepting again once the key verifies picks up where it stopped.
    a.tamper = UnaryOperator.identity();
    alice.acceptInvitation(invitation.uri(), "bob");
    assertEquals(1, a.takes.size());
  }

  /** Records send events as "event label id [reason]". */
  private static final class Events implements FerryListener {
    final List<String> seen = Collections.synchronizedList(new ArrayList<>());
    final List<FerryException> failures = Collections.synchronizedList(new ArrayList<>());

    @Override
    public void onMessage(ReceivedMessage message) {}

    @Override
    public void onSendAccepted(String label, String id) {
      seen.add("accepted " + label + " " + id);
    }

    @Override
    public void onSendDelivered(String label, String id) {
      seen.add("delivered " + label + " " + id);
    }

    @Override
    public void onSendFailed(String label, String id, FerryException failure) {
      seen.add("failed " + label + " " + id + " " + failure.reason());
      failures.add(failure);
    }
  }

  private static ForwardOutcome failed(ForwardRequest r, io.grpc.Status.Code code, String reason, String hop) {
    return ForwardOutcome.newBuilder()
        .setItemId(r.getItemId())
        .setDestination(r.getDestination())
        .setResult(ForwardOutcome.Result.FAILED)
        .setCode(code.value())
        .setReason(reason)
        .setHop(hop)
        .build();
  }

  private SendStatus status(String id) {
    return alice.sends().stream().filter(s -> s.messageId().equals(id)).findFirst()
        .orElseThrow(() -> new AssertionError("not listed: " + id + " in " + alice.sends()));
  }

  @Test
  void outcomesInTheForwarderMailboxTellDeliveryAndFailureOfEachMessage() throws Exception {
    FakeFederation.connect(bob, "alice", alice, "bob");
    Events events = new Events();
    alice.addListener(events);
    alice.start();

    a.holdOutcomes = true;
    String one = alice.sendAsync("bob", "one").get(20, TimeUnit.SECONDS);
    await().atMost(Duration.ofSeconds(20)).until(() -> events.seen.contains("accepted bob " + one));
    assertEquals(SendStatus.State.FORWARDING, status(one).state());
    assertTrue(status(one).heldByHomeSince().isPresent());
    assertFalse(events.seen.contains("delivered bob " + one));

    a.releaseOutcomes();
    await().atMost(Duration.ofSeconds(20)).until(() -> events.seen.contains("delivered bob " + one));
    await().atMost(Duration.ofSeconds(20)).until(() -> alice.sends().stream().noneMatch(s -> s.messageId().equals(one)));

    a.holdOutcomes = false;
    a.outcomeOverride = r -> failed(r, io.grpc.Status.Code.DEADLINE_EXCEEDED, ErrorReasons.EXPIRED, "home");
    String two = alice.sendAsync("bob", "two").get(20, TimeUnit.SECONDS);
    await().atMost(Duration.ofSeconds(20)).until(() -> events.seen.contains("failed bob " + two + " EXPIRED"));
    SendStatus expired = status(two);
    assertEquals(SendStatus.State.FAILED, expired.state());
    assertEquals(FerryException.Reason.EXPIRED, expired.failure().orElseThrow().reason());
    assertTrue(expired.failure().orElseThrow().message().contains("time to live"), expired.toString());

    a.outcomeOverride = r -> failed(r, io.grpc.Status.Code.NOT_FOUND, "", "destination");
    String three = alice.sendAsync("bob", "three").get(20, TimeUnit.SECONDS);
    await().atMost(Duration.ofSeconds(20)).until(() -> events.seen.contains("failed bob " + three + " REJECTED"));
    String why = status(three).failure().orElseThrow().message();
    assertTrue(why.contains("server b.example:7443") && why.contains("does not exist"), why);

    // Each message heard exactly its own outcome.
    assertFalse(events.seen.contains("delivered bob " + two));
    assertFalse(events.seen.contains("delivered bob " + three));
    assertEquals(1, events.seen.stream().filter(s -> s.startsWith("delivered bob " + one)).count());
  }

  @Test
  void aSendToAContactOnTheHomeServerIsDeliveredWithoutForwarding() throws Exception {
    Set<ServerAddress> carolOpened = ConcurrentHashMap.newKeySet();
    try (FerryClient carol = fed.client(dir.resolve("carol"), carolOpened)) {
      // Another spelling of A's address: the same server, by its pinned key.
      carol.initialize(new ServerAddress("127.0.0.1", 7443, a.address.fingerprint()));
      FakeFederation.connect(carol, "alice", alice, "carol");
      Events events = new Events();
      alice.addListener(events);
      int forwards = a.forwards.size();
      String id = alice.sendAsync("carol", "next door").get(20, TimeUnit.SECONDS);
      await().atMost(Duration.ofSeconds(20)).until(() -> events.seen.contains("delivered carol " + id));
      assertTrue(events.seen.indexOf("accepted carol " + id) < events.seen.indexOf("delivered carol " + id));
      assertEquals(forwards, a.forwards.size());
      assertTrue(a.takes.isEmpty());
      assertEquals(List.of("alice: next door"), texts(carol, 1));
    }
  }

  private long forwardsOf(String messageId) {
    synchronized (a.forwards) {
      return a.forwards.stream()
          .filter(f -> java.util.HexFormat.of().formatHex(f.getItemId().toByteArray()).equals(messageId)).count();
    }
  }

  @Test
  void aDestinationThatNoLongerHoldsOurRoutingKeyGetsTheItemSealedToAFreshKeyOnce() throws Exception {
    FakeFederation.connect(bob, "alice", alice, "bob");
    Events events = new Events();
    alice.addListener(events);
    alice.start();

    // The home server answers the Forward itself: the destination does not hold that key id.
    java.util.concurrent.atomic.AtomicBoolean refused = new java.util.concurrent.atomic.AtomicBoolean();
    a.refuse = r -> refused.compareAndSet(false, true)
        ? ErrorReasons.withReason(io.grpc.Status.Code.FAILED_PRECONDITION, ErrorReasons.UNKNOWN_ROUTING_KEY, "rotated")
        : null;
    int keys = a.keyRequests.size();
    String first = alice.send("bob", "first");
    assertEquals(keys + 1, a.keyRequests.size(), "the key was not fetched again");
    assertEquals(2, forwardsOf(first));
    a.refuse = null;

    // The destination says so in the outcome, after the home server took the item.
    java.util.concurrent.atomic.AtomicBoolean once = new java.util.concurrent.atomic.AtomicBoolean();
    a.outcomeOverride = r -> once.compareAndSet(false, true)
        ? failed(r, io.grpc.Status.Code.FAILED_PRECONDITION, ErrorReasons.UNKNOWN_ROUTING_KEY, "destination")
        : null;
    keys = a.keyRequests.size();
    String second = alice.sendAsync("bob", "second").get(20, TimeUnit.SECONDS);
    await().atMost(Duration.ofSeconds(20)).until(() -> events.seen.contains("delivered bob " + second));
    assertEquals(2, forwardsOf(second));
    assertEquals(keys + 1, a.keyRequests.size());

    // Only once: a destination that keeps saying so fails the message.
    a.outcomeOverride = r -> failed(r, io.grpc.Status.Code.FAILED_PRECONDITION, ErrorReasons.UNKNOWN_ROUTING_KEY,
        "destination");
    String third = alice.sendAsync("bob", "third").get(20, TimeUnit.SECONDS);
    await().atMost(Duration.ofSeconds(20)).until(() -> events.seen.contains("failed bob " + third + " REJECTED"));
    assertEquals(2, forwardsOf(third));
    assertEquals(List.of("alice: first", "alice: second", "alice: third"), texts(bob, 3));
  }

  @Test
  void everyConnectionLeavesFromTheChosenLocalAddress() throws Exception {
    java.net.InetAddress local = java.net.InetAddress.getByName("127.0.0.2");
    try (java.net.ServerSocket listener = new java.net.ServerSocket(0, 50, java.net.InetAddress.getLoopbackAddress());
        FerryClient carol = FerryClient.builder()
            .dataDirectory(dir.resolve("carol"))
            .storageKey(new byte[32])
            .callTimeout(Duration.ofSeconds(3))
            .localAddress(local)
            .build()) {
      listener.setSoTimeout(20_000);
      java.util.concurrent.CompletableFuture<java.net.InetAddress> from = java.util.concurrent.CompletableFuture.supplyAsync(() -> {
        try (java.net.Socket s = listener.accept()) {
          return s.getInetAddress();
        } catch (java.io.IOException e) {
          throw new java.io.UncheckedIOException(e);
        }
      });
      // Not a Ferry server: the handshake fails, after the connection was made.
      assertThrows(FerryException.class, () -> carol.initialize(
          new ServerAddress("127.0.0.1", listener.getLocalPort(), a.address.fingerprint())));
      assertEquals(local, from.get(20, TimeUnit.SECONDS));
    }
  }

  @Test
  void aForwarderMailboxTheHomeServerLostIsMadeAgainAndTheSendGoesThrough() {
    FakeFederation.connect(bob, "alice", alice, "bob");
    ByteString lost = a.forwards.get(a.forwards.size() - 1).getForwarder().getMailboxId();
    a.dropMailbox(lost);
    alice.send("bob", "still here");
    ByteString now = a.forwards.get(a.forwards.size() - 1).getForwarder().getMailboxId();
    assertFalse(now.equals(lost), "the lost forwarder mailbox was used again");
    assertEquals(List.of("alice: still here"), texts(bob, 1));
  }
}
