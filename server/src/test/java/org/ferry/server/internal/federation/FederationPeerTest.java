package org.ferry.server.internal.federation;

import static org.ferry.server.internal.federation.FederationFixture.bytes;
import static org.ferry.server.internal.federation.FederationFixture.sealSend;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import com.google.protobuf.ByteString;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import org.ferry.proto.ErrorReasons;
import org.ferry.proto.RoutingKeys;
import org.ferry.proto.RoutingSeal;
import org.ferry.proto.v1.DeliverRequest;
import org.ferry.proto.v1.DeliverResponse;
import org.ferry.proto.v1.FederatedItem;
import org.ferry.proto.v1.FederationGrpc;
import org.ferry.proto.v1.FederationRoutingKeyRequest;
import org.ferry.proto.v1.ForwardRequest;
import org.ferry.proto.v1.ForwarderAuth;
import org.ferry.proto.v1.ItemResult;
import org.ferry.proto.v1.RoutingKey;
import org.ferry.relay.internal.tls.TlsIdentity;
import org.ferry.server.FerryServer;
import org.ferry.server.internal.federation.FederationFixture.Box;
import org.ferry.server.internal.federation.FederationFixture.Node;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A destination server facing raw peers: each with its own key, some hostile. */
class FederationPeerTest {
  @TempDir Path tmp;
  Node b;
  final List<ManagedChannel> channels = new ArrayList<>();

  @AfterEach
  void stop() {
    channels.forEach(ManagedChannel::shutdownNow);
    if (b != null) {
      b.close();
    }
  }

  private void startB(Consumer<FerryServer.Builder> config) throws Exception {
    b = new Node(tmp.resolve("b"), config);
  }

  private FederationGrpc.FederationBlockingStub peer(TlsIdentity identity) {
    ManagedChannel c = FederationFixture.clientChannel(b.port, identity);
    channels.add(c);
    return FederationGrpc.newBlockingStub(c).withDeadlineAfter(30, TimeUnit.SECONDS);
  }

  private RoutingKey keyOfB(FederationGrpc.FederationBlockingStub peer) throws Exception {
    return RoutingKeys.verify(peer.getRoutingKey(FederationRoutingKeyRequest.getDefaultInstance()), b.address(),
        b.clock.instant());
  }

  private FederatedItem item(RoutingKey key, Box to, byte[] itemId) {
    byte[] body = bytes(1024);
    return FederatedItem.newBuilder()
        .setItemId(ByteString.copyFrom(itemId))
        .setRoutingKeyId(key.getKeyId())
        .setSealedRouting(ByteString.copyFrom(sealSend(key, to.id(), to.capability(), itemId, body)))
        .setBody(ByteString.copyFrom(body))
        .setExpiresAt(b.clock.instant().plusSeconds(3600).toEpochMilli())
        .build();
  }

  @Test
  void federationCallWithoutAClientCertificateIsUnauthenticated() throws Exception {
    startB(builder -> {});
    StatusRuntimeException e = assertThrows(StatusRuntimeException.class,
        () -> peer(null).getRoutingKey(FederationRoutingKeyRequest.getDefaultInstance()));
    assertEquals(Status.Code.UNAUTHENTICATED, e.getStatus().getCode());
    // A client without a certificate still uses the other services on the same port.
    b.createMailbox();
  }

  @Test
  void denylistedPeerIsRefusedWithPermissionDenied() throws Exception {
    TlsIdentity hostile = FederationFixture.peerIdentity(tmp.resolve("hostile"));
    startB(builder -> builder.federationDeny(FederationFixture.fingerprintOf(hostile)));
    StatusRuntimeException e = assertThrows(StatusRuntimeException.class,
        () -> peer(hostile).deliver(DeliverRequest.getDefaultInstance()));
    assertEquals(Status.Code.PERMISSION_DENIED, e.getStatus().getCode());
    assertEquals(ErrorReasons.PEER_REFUSED, ErrorReasons.of(e).orElseThrow());
  }

  @Test
  void allowlistModeRefusesPeersNotOnTheListAndServesThoseOnIt() throws Exception {
    TlsIdentity listed = FederationFixture.peerIdentity(tmp.resolve("listed"));
    TlsIdentity other = FederationFixture.peerIdentity(tmp.resolve("other"));
    startB(builder -> builder.federation(FederationOptions.Mode.ALLOWLIST)
        .federationAllow(FederationFixture.fingerprintOf(listed)));
    keyOfB(peer(listed));
    StatusRuntimeException e = assertThrows(StatusRuntimeException.class,
        () -> peer(other).getRoutingKey(FederationRoutingKeyRequest.getDefaultInstance()));
    assertEquals(Status.Code.PERMISSION_DENIED, e.getStatus().getCode());
  }

  @Test
  void unknownPeerOverTheSharedBudgetIsRateLimitedWhileAnAllowedPeersTrafficFlows() throws Exception {
    TlsIdentity flooder = FederationFixture.peerIdentity(tmp.resolve("flooder"));
    TlsIdentity honest = FederationFixture.peerIdentity(tmp.resolve("honest"));
    // One item per second shared by unknown peers: a burst of 10; the test's ticker does not move.
    startB(builder -> builder.unknownPeersRate(1).federationAllow(FederationFixture.fingerprintOf(honest)));
    Box recipient = b.createMailbox();
    FederationGrpc.FederationBlockingStub flood = peer(flooder);
    FederationGrpc.FederationBlockingStub good = peer(honest);
    RoutingKey key = keyOfB(good);
    StatusRuntimeException limited = null;
    for (int i = 0; i < 20 && limited == null; i++) {
      try {
        flood.deliver(DeliverRequest.newBuilder().addItems(item(key, recipient, bytes(16))).build());
      } catch (StatusRuntimeException e) {
        limited = e;
      }
    }
    assertEquals(Status.Code.RESOURCE_EXHAUSTED, limited == null ? null : limited.getStatus().getCode());
    assertEquals(ErrorReasons.RATE_LIMITED, ErrorReasons.of(limited).orElseThrow());
    assertEquals(true, ErrorReasons.retryAfter(limited).isPresent());
    DeliverResponse r = good.deliver(DeliverRequest.newBuilder().addItems(item(key, recipient, bytes(16))).build());
    assertEquals(Status.Code.OK.value(), r.getResults(0).getCode());
  }

  @Test
  void sameItemDeliveredConcurrentlyIsStoredOnceAndEveryCallHearsOk() throws Exception {
    TlsIdentity identity = FederationFixture.peerIdentity(tmp.resolve("peer"));
    startB(builder -> {});
    Box recipient = b.createMailbox();
    FederationGrpc.FederationBlockingStub peer = peer(identity);
    FederatedItem item = item(keyOfB(peer), recipient, bytes(16));
    ExecutorService pool = Executors.newFixedThreadPool(8);
    CountDownLatch go = new CountDownLatch(1);
    List<CompletableFuture<DeliverResponse>> calls = new ArrayList<>();
    try {
      for (int i = 0; i < 8; i++) {
        calls.add(CompletableFuture.supplyAsync(() -> {
          try {
            go.await();
          } catch (InterruptedException e) {
            throw new IllegalStateException(e);
          }
          return peer.deliver(DeliverRequest.newBuilder().addItems(item).addItems(item).build());
        }, pool));
      }
      go.countDown();
      for (CompletableFuture<DeliverResponse> c : calls) {
        for (ItemResult r : c.get(30, TimeUnit.SECONDS).getResultsList()) {
          assertEquals(Status.Code.OK.value(), r.getCode(), r.getMessage());
        }
      }
    } finally {
      pool.shutdownNow();
    }
    assertEquals(1, b.storedIn(recipient));
  }

  @Test
  void malformedItemsEachGetTheirRefusalAndNothingIsStored() throws Exception {
    TlsIdentity identity = FederationFixture.peerIdentity(tmp.resolve("peer"));
    startB(builder -> {});
    Box recipient = b.createMailbox();
    FederationGrpc.FederationBlockingStub peer = peer(identity);
    RoutingKey key = keyOfB(peer);
    FederatedItem good = item(key, recipient, bytes(16));
    List<FederatedItem> bad = List.of(
        good.toBuilder().setBody(ByteString.copyFrom(bytes(1000))).build(),
        good.toBuilder().setItemId(ByteString.copyFrom(bytes(15))).build(),
        good.toBuilder().setSealedRouting(ByteString.copyFrom(bytes(RoutingSeal.SEALED_LENGTH - 1))).build(),
        good.toBuilder().setSealedRouting(ByteString.copyFrom(bytes(RoutingSeal.SEALED_LENGTH))).build(),
        good.toBuilder().setExpiresAt(b.clock.instant().minusSeconds(1).toEpochMilli()).build());
    DeliverResponse r = peer.deliver(DeliverRequest.newBuilder().addAllItems(bad).build());
    assertEquals(bad.size(), r.getResultsCount());
    for (int i = 0; i < bad.size() - 1; i++) {
      assertEquals(Status.Code.INVALID_ARGUMENT.value(), r.getResults(i).getCode(), "item " + i);
    }
    assertEquals(ErrorReasons.EXPIRED, r.getResults(bad.size() - 1).getReason());
    StatusRuntimeException tooMany = assertThrows(StatusRuntimeException.class, () -> peer.deliver(
        DeliverRequest.newBuilder().addAllItems(java.util.Collections.nCopies(257,
            FederatedItem.newBuilder().setItemId(good.getItemId()).build())).build()));
    assertEquals(Status.Code.INVALID_ARGUMENT, tooMany.getStatus().getCode());
    assertEquals(0, b.storedIn(recipient));
  }

  @Test
  void forwardWithoutAValidForwarderIsUnauthenticated() throws Exception {
    startB(builder -> {});
    Box forwarder = b.createMailbox();
    ForwardRequest request = ForwardRequest.newBuilder()
        .setForwarder(ForwarderAuth.newBuilder().setMailboxId(forwarder.id())
            .setSendCapability(ByteString.copyFrom(bytes(32))))
        .setDestination(b.address().toString())
        .setItemId(ByteString.copyFrom(bytes(16)))
        .setSealedRouting(ByteString.copyFrom(bytes(RoutingSeal.SEALED_LENGTH)))
        .setBody(ByteString.copyFrom(bytes(1024)))
        .build();
    StatusRuntimeException wrongCapability =
        assertThrows(StatusRuntimeException.class, () -> b.forwarding().forward(request));
    assertEquals(Status.Code.UNAUTHENTICATED, wrongCapability.getStatus().getCode());
    StatusRuntimeException noMailbox = assertThrows(StatusRuntimeException.class, () -> b.forwarding().forward(
        request.toBuilder().setForwarder(ForwarderAuth.newBuilder().setMailboxId(ByteString.copyFrom(bytes(32)))
            .setSendCapability(ByteString.copyFrom(forwarder.capability()))).build()));
    assertEquals(Status.Code.UNAUTHENTICATED, noMailbox.getStatus().getCode());
  }

  @Test
  void forwardingToAnUnreachableRefusedOrMalformedServerSaysWhich() throws Exception {
    byte[] deniedKey = bytes(32);
    startB(builder -> builder.federationDeny(org.ferry.proto.ServerAddress.fingerprintText(deniedKey)));
    Box forwarder = b.createMailbox();
    // Nothing listens on the discard port.
    org.ferry.proto.ServerAddress unreachable = new org.ferry.proto.ServerAddress("127.0.0.1", 9, bytes(32));
    org.ferry.proto.ServerAddress denied = new org.ferry.proto.ServerAddress("127.0.0.1", 9, deniedKey);
    StatusRuntimeException noKey = assertThrows(StatusRuntimeException.class, () -> b.forwarding().getRoutingKey(
        org.ferry.proto.v1.GetRoutingKeyRequest.newBuilder().setForwarder(forwarder.auth())
            .setServer(unreachable.toString()).build()));
    assertEquals(Status.Code.UNAVAILABLE, noKey.getStatus().getCode());
    org.ferry.proto.v1.ForwardTakeRequest take = org.ferry.proto.v1.ForwardTakeRequest.newBuilder()
        .setForwarder(forwarder.auth()).setDestination(unreachable.toString())
        .setRequestId(ByteString.copyFrom(bytes(16)))
        .setSealedRouting(ByteString.copyFrom(bytes(RoutingSeal.SEALED_LENGTH))).build();
    StatusRuntimeException noTake = assertThrows(StatusRuntimeException.class, () -> b.forwarding().forwardTake(take));
    assertEquals(Status.Code.UNAVAILABLE, noTake.getStatus().getCode());
    StatusRuntimeException refused = assertThrows(StatusRuntimeException.class,
        () -> b.forwarding().forwardTake(take.toBuilder().setDestination(denied.toString()).build()));
    assertEquals(Status.Code.FAILED_PRECONDITION, refused.getStatus().getCode());
    assertEquals(ErrorReasons.PEER_REFUSED, ErrorReasons.of(refused).orElseThrow());
    StatusRuntimeException malformed = assertThrows(StatusRuntimeException.class, () -> b.forwarding().getRoutingKey(
        org.ferry.proto.v1.GetRoutingKeyRequest.newBuilder().setForwarder(forwarder.auth())
            .setServer("not an address").build()));
    assertEquals(Status.Code.INVALID_ARGUMENT, malformed.getStatus().getCode());
  }
}
