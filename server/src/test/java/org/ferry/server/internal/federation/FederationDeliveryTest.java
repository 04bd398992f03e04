package org.ferry.server.internal.federation;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.ferry.server.internal.federation.FederationFixture.bytes;
import static org.ferry.server.internal.federation.FederationFixture.forwardTo;
import static org.ferry.server.internal.federation.FederationFixture.routingKey;
import static org.ferry.server.internal.federation.FederationFixture.sealSend;

import com.google.protobuf.ByteString;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.function.Function;
import java.util.stream.Collectors;
import org.ferry.proto.ErrorReasons;
import org.ferry.proto.v1.ForwardOutcome;
import org.ferry.proto.v1.ForwardRequest;
import org.ferry.proto.v1.RoutingKey;
import org.ferry.server.internal.federation.FederationFixture.Box;
import org.ferry.server.internal.federation.FederationFixture.Node;
import org.ferry.server.internal.federation.FederationFixture.Outcomes;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Two real servers: a client of A forwards through A to mailboxes on B. */
class FederationDeliveryTest {
  @TempDir Path tmp;
  Node a;
  Node b;

  @BeforeEach
  void start() throws Exception {
    a = new Node(tmp.resolve("a"), builder -> {});
    b = new Node(tmp.resolve("b"), builder -> {});
  }

  @AfterEach
  void stop() {
    a.close();
    b.close();
  }

  @Test
  void forwardedItemIsStoredOnceAtDestinationEvenWhenSentTwiceAndForwarderHearsDelivered() throws Exception {
    Box forwarder = a.createMailbox();
    Box recipient = b.createMailbox();
    RoutingKey key = routingKey(a, b.address(), forwarder, a.clock.instant());
    ForwardRequest item = forwardTo(b.address(), key, forwarder, recipient, bytes(16));
    try (Outcomes outcomes = new Outcomes(a, forwarder)) {
      a.forwarding().forward(item);
      // The same item again, as a client that never heard the first answer would.
      a.forwarding().forward(item);
      List<ForwardOutcome> got = outcomes.waitFor(2);
      for (ForwardOutcome o : got) {
        assertEquals(ForwardOutcome.Result.DELIVERED, o.getResult());
        assertEquals(item.getItemId(), o.getItemId());
        assertEquals(b.address().toString(), o.getDestination());
      }
    }
    assertEquals(1, b.storedIn(recipient));
    assertEquals(0, a.outboundWaiting());
  }

  @Test
  void refusalsAtDestinationBecomeFailedOutcomesNamingTheDestinationAndStoreNothing() throws Exception {
    Box forwarder = a.createMailbox();
    Box recipient = b.createMailbox();
    RoutingKey key = routingKey(a, b.address(), forwarder, a.clock.instant());
    Box nowhere = new Box(ByteString.copyFrom(bytes(32)), recipient.owner(), recipient.capability());
    Box wrongCapability = new Box(recipient.id(), recipient.owner(), bytes(32));
    ForwardRequest noSuchMailbox = forwardTo(b.address(), key, forwarder, nowhere, bytes(16));
    ForwardRequest badCapability = forwardTo(b.address(), key, forwarder, wrongCapability, bytes(16));
    ForwardRequest garbageSeal = forwardTo(b.address(), key, forwarder, recipient, bytes(16)).toBuilder()
        .setSealedRouting(ByteString.copyFrom(bytes(org.ferry.proto.RoutingSeal.SEALED_LENGTH))).build();
    ForwardRequest wrongKeyId = forwardTo(b.address(), key, forwarder, recipient, bytes(16)).toBuilder()
        .setRoutingKeyId(key.getKeyId() + 1).build();
    // Sealed for another item's body: the seal is bound to its item.
    byte[] otherBody = bytes(1024);
    ForwardRequest movedSeal = forwardTo(b.address(), key, forwarder, recipient, bytes(16)).toBuilder()
        .setBody(ByteString.copyFrom(otherBody)).build();
    List<ForwardRequest> items = List.of(noSuchMailbox, badCapability, garbageSeal, wrongKeyId, movedSeal);
    try (Outcomes outcomes = new Outcomes(a, forwarder)) {
      items.forEach(a.forwarding()::forward);
      Map<ByteString, ForwardOutcome> byItem = outcomes.waitFor(items.size()).stream()
          .collect(Collectors.toMap(ForwardOutcome::getItemId, Function.identity()));
      assertEquals(items.size(), byItem.size());
      for (ForwardOutcome o : byItem.values()) {
        assertEquals(ForwardOutcome.Result.FAILED, o.getResult());
        assertEquals("destination", o.getHop());
      }
      assertEquals(io.grpc.Status.Code.NOT_FOUND.value(), byItem.get(noSuchMailbox.getItemId()).getCode());
      assertEquals(io.grpc.Status.Code.PERMISSION_DENIED.value(), byItem.get(badCapability.getItemId()).getCode());
      assertEquals(io.grpc.Status.Code.INVALID_ARGUMENT.value(), byItem.get(garbageSeal.getItemId()).getCode());
      assertEquals(io.grpc.Status.Code.INVALID_ARGUMENT.value(), byItem.get(movedSeal.getItemId()).getCode());
      assertEquals(ErrorReasons.UNKNOWN_ROUTING_KEY, byItem.get(wrongKeyId.getItemId()).getReason());
      assertEquals(io.grpc.Status.Code.FAILED_PRECONDITION.value(), byItem.get(wrongKeyId.getItemId()).getCode());
    }
    assertEquals(0, b.storedIn(recipient));
  }

  @Test
  void destinationDownKeepsTheItemAndDeliversItOnceTheDestinationIsBack() throws Exception {
    Box forwarder = a.createMailbox();
    Box recipient = b.createMailbox();
    RoutingKey key = routingKey(a, b.address(), forwarder, a.clock.instant());
    b.stop();
    try (Outcomes outcomes = new Outcomes(a, forwarder)) {
      ForwardRequest item = forwardTo(b.address(), key, forwarder, recipient, bytes(16));
      a.forwarding().forward(item);
      b.start();
      List<ForwardOutcome> got = outcomes.waitFor(1);
      assertEquals(1, got.size());
      assertEquals(ForwardOutcome.Result.DELIVERED, got.get(0).getResult());
    }
    assertEquals(1, b.storedIn(recipient));
  }

  @Test
  void restartedHomeServerResumesItsQueuedItems() throws Exception {
    Box forwarder = a.createMailbox();
    Box recipient = b.createMailbox();
    RoutingKey key = routingKey(a, b.address(), forwarder, a.clock.instant());
    b.stop();
    for (int i = 0; i < 3; i++) {
      a.forwarding().forward(forwardTo(b.address(), key, forwarder, recipient, bytes(16)));
    }
    a.stop();
    b.start();
    a.start();
    try (Outcomes outcomes = new Outcomes(a, forwarder)) {
      List<ForwardOutcome> got = outcomes.waitFor(3);
      assertEquals(3, got.size());
      got.forEach(o -> assertEquals(ForwardOutcome.Result.DELIVERED, o.getResult()));
    }
    assertEquals(3, b.storedIn(recipient));
    assertEquals(0, a.outboundWaiting());
  }

  @Test
  void itemWhoseTimeRunsOutWhileDestinationIsDownExpiresWithAnOutcomeAndLeavesNothingQueued() throws Exception {
    Box forwarder = a.createMailbox();
    Box recipient = b.createMailbox();
    RoutingKey key = routingKey(a, b.address(), forwarder, a.clock.instant());
    b.stop();
    ForwardRequest item = forwardTo(b.address(), key, forwarder, recipient, bytes(16)).toBuilder()
        .setTtlSeconds(60).build();
    a.forwarding().forward(item);
    try (Outcomes outcomes = new Outcomes(a, forwarder)) {
      a.clock.advance(Duration.ofMinutes(2));
      ForwardOutcome expired = outcomes.waitFor(1).get(0);
      assertEquals(item.getItemId(), expired.getItemId());
      assertEquals(ForwardOutcome.Result.FAILED, expired.getResult());
      assertEquals(ErrorReasons.EXPIRED, expired.getReason());
      assertEquals(io.grpc.Status.Code.DEADLINE_EXCEEDED.value(), expired.getCode());
      assertEquals("home", expired.getHop());
    }
    assertEquals(0, a.outboundWaiting());
  }

  @Test
  void forwardToTheHomeServerItselfStoresItThereWithoutAnOutcome() throws Exception {
    Box forwarder = a.createMailbox();
    Box recipient = a.createMailbox();
    RoutingKey key = routingKey(a, a.address(), forwarder, a.clock.instant());
    byte[] itemId = bytes(16);
    byte[] body = bytes(4096);
    ForwardRequest item = ForwardRequest.newBuilder().setForwarder(forwarder.auth())
        .setDestination(a.address().toString()).setItemId(ByteString.copyFrom(itemId))
        .setRoutingKeyId(key.getKeyId())
        .setSealedRouting(ByteString.copyFrom(sealSend(key, recipient.id(), recipient.capability(), itemId, body)))
        .setBody(ByteString.copyFrom(body)).build();
    a.forwarding().forward(item);
    a.forwarding().forward(item);
    assertEquals(1, a.storedIn(recipient));
    assertEquals(0, a.storedIn(forwarder));
  }

  @Test
  void invitationOnAnotherServerIsTakenThroughTheHomeServerOnceAndItsRefusalPassesThrough() throws Exception {
    Box forwarder = a.createMailbox();
    Box inviter = b.createMailbox();
    byte[] fetchToken = bytes(32);
    byte[] blob = bytes(300);
    int ttl = 3600;
    byte[] fetchTokenHash = org.ferry.server.internal.util.Bytes.sha256(fetchToken);
    org.ferry.proto.v1.InvitationsGrpc.newBlockingStub(b.client()).putInvitation(
        org.ferry.proto.v1.PutInvitationRequest.newBuilder()
            .setMailboxId(inviter.id())
            .setFetchTokenHash(ByteString.copyFrom(fetchTokenHash))
            .setBlob(ByteString.copyFrom(blob))
            .setTtlSeconds(ttl)
            .setSignature(ByteString.copyFrom(org.ferry.proto.OwnerKeys.sign(inviter.owner().getPrivate(),
                org.ferry.proto.OwnerKeys.PUT_INVITATION_CONTEXT, inviter.id().toByteArray(), fetchTokenHash,
                org.ferry.server.internal.util.Bytes.sha256(blob),
                java.nio.ByteBuffer.allocate(4).putInt(ttl).array())))
            .build());
    RoutingKey key = routingKey(a, b.address(), forwarder, a.clock.instant());
    java.util.function.Supplier<org.ferry.proto.v1.ForwardTakeRequest> take = () -> {
      byte[] requestId = bytes(16);
      byte[] routing = org.ferry.proto.v1.Routing.newBuilder().setTake(org.ferry.proto.v1.TakeRouting.newBuilder()
          .setMailboxId(inviter.id()).setFetchToken(ByteString.copyFrom(fetchToken))
          .setTakeId(ByteString.copyFrom(bytes(16)))).build().toByteArray();
      return org.ferry.proto.v1.ForwardTakeRequest.newBuilder()
          .setForwarder(forwarder.auth())
          .setDestination(b.address().toString())
          .setRequestId(ByteString.copyFrom(requestId))
          .setRoutingKeyId(key.getKeyId())
          .setSealedRouting(ByteString.copyFrom(org.ferry.proto.RoutingSeal.seal(key.getPublicKey().toByteArray(),
              key.getKeyId(), routing, requestId, FederationFixture.RANDOM)))
          .build();
    };
    assertEquals(ByteString.copyFrom(blob), a.forwarding().forwardTake(take.get()).getBlob());
    io.grpc.StatusRuntimeException used = org.junit.jupiter.api.Assertions.assertThrows(
        io.grpc.StatusRuntimeException.class, () -> a.forwarding().forwardTake(take.get()));
    assertEquals(io.grpc.Status.Code.NOT_FOUND, used.getStatus().getCode());
    assertEquals(ErrorReasons.INVITATION_USED, ErrorReasons.of(used).orElseThrow());
  }

  @Test
  void itemForwardedBehindABacklogIsDeliveredWithinTheFirstBatchesNotAfterTheWholeBacklog() throws Exception {
    Box forwarder = a.createMailbox();
    Box recipient = b.createMailbox();
    RoutingKey key = routingKey(a, b.address(), forwarder, a.clock.instant());
    b.stop();
    int backlog = 400;
    for (int i = 0; i < backlog; i++) {
      a.forwarding().forward(forwardTo(b.address(), key, forwarder, recipient, bytes(16)));
    }
    ForwardRequest fresh = forwardTo(b.address(), key, forwarder, recipient, bytes(16));
    a.forwarding().forward(fresh);
    b.start();
    try (Outcomes outcomes = new Outcomes(a, forwarder)) {
      outcomes.waitFor(backlog + 1);
    }
    List<ByteString> order = b.idsIn(recipient);
    assertEquals(backlog + 1, order.size());
    int position = order.indexOf(fresh.getItemId());
    // Batches hold at most 96 KiB of bodies: the oldest batch, then the newest (with it).
    org.junit.jupiter.api.Assertions.assertTrue(position >= 0 && position < 2 * 96,
        "the fresh item came at position " + position + " of " + order.size());
  }
}
