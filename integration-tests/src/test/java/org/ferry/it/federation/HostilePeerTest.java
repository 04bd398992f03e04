package org.ferry.it.federation;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.netty.GrpcSslContexts;
import io.grpc.netty.NettyChannelBuilder;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslContextBuilder;
import io.netty.handler.ssl.util.InsecureTrustManagerFactory;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.ferry.it.Closer;
import org.ferry.it.load.Forwarder;
import org.ferry.it.load.LoadClient;
import org.ferry.it.load.Receiver;
import org.ferry.proto.RoutingKeys;
import org.ferry.proto.RoutingSeal;
import org.ferry.proto.ServerAddress;
import org.ferry.proto.v1.DeliverRequest;
import org.ferry.proto.v1.DeliverResponse;
import org.ferry.proto.v1.FederatedItem;
import org.ferry.proto.v1.FederationGrpc;
import org.ferry.proto.v1.FederationRoutingKeyRequest;
import org.ferry.proto.v1.ItemResult;
import org.ferry.proto.v1.Routing;
import org.ferry.proto.v1.RoutingKey;
import org.ferry.proto.v1.SendRouting;
import org.ferry.relay.internal.tls.TlsIdentity;
import org.ferry.server.FerryServer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A hostile peer: a raw gRPC client with a key of its own speaks Federation to server B. Every
 * wrong item gets its status and nothing of it is stored; replays are answered without storing
 * again; a flood beyond its budget is refused; and an honest peer's items keep flowing.
 */
class HostilePeerTest {
  private static final Duration BOUND = Duration.ofSeconds(60);
  private static final SecureRandom RANDOM = new SecureRandom();

  @TempDir Path dir;
  private final Closer closer = new Closer();
  private FerryServer honest;
  private FerryServer b;
  private ManagedChannel hostile;
  private RoutingKey key;
  private LoadClient.Mailbox mailbox;
  private final Set<String> stored = ConcurrentHashMap.newKeySet();
  private final AtomicInteger deliveries = new AtomicInteger();

  @AfterEach
  void closeAll() {
    closer.close();
  }

  /** Honest server A; B knows A (its own budget) and gives unknown peers {@code unknownRate} items/s. */
  private void start(double unknownRate) throws Exception {
    honest = closer.add(FerryServer.builder().dataDirectory(dir.resolve("a")).listen("127.0.0.1", 0).start());
    b = closer.add(FerryServer.builder().dataDirectory(dir.resolve("b")).listen("127.0.0.1", 0)
        .federationAllow(honest.address().fingerprintText())
        .unknownPeersRate(unknownRate)
        .start());
    hostile = peerChannel(b.address(), true);
    closer.add(hostile::shutdownNow);
    key = RoutingKeys.verify(FederationGrpc.newBlockingStub(hostile).withDeadlineAfter(10, TimeUnit.SECONDS)
        .getRoutingKey(FederationRoutingKeyRequest.getDefaultInstance()), b.address(), Instant.now());
    ManagedChannel toB = LoadClient.channel(b.address());
    closer.add(toB::shutdownNow);
    mailbox = LoadClient.createMailbox(toB);
    closer.add(new Receiver(b::address, List.of(mailbox), d -> {
      deliveries.incrementAndGet();
      stored.add(java.util.HexFormat.of().formatHex(d.getEnvelope().getId().toByteArray()));
    }));
  }

  /** A TLS channel to {@code server} that presents a key of its own (or none). */
  private ManagedChannel peerChannel(ServerAddress server, boolean withCertificate) throws Exception {
    SslContextBuilder ssl = GrpcSslContexts.forClient().trustManager(InsecureTrustManagerFactory.INSTANCE)
        .protocols("TLSv1.3");
    if (withCertificate) {
      TlsIdentity own = TlsIdentity.loadOrCreate(
          java.nio.file.Files.createDirectories(dir.resolve("hostile-" + RANDOM.nextInt(1 << 20))),
          "server", "hostile", RANDOM);
      ssl.keyManager(own.privateKey(), own.certificate());
    }
    SslContext context = ssl.build();
    return NettyChannelBuilder.forAddress(server.host(), server.port()).sslContext(context).build();
  }

  private FederatedItem item(byte[] itemId, LoadClient.Mailbox to, byte[] capability, byte[] body) {
    byte[] routing = Routing.newBuilder().setSend(SendRouting.newBuilder()
        .setMailboxId(to.id()).setSendCapability(ByteString.copyFrom(capability))).build().toByteArray();
    return FederatedItem.newBuilder()
        .setItemId(ByteString.copyFrom(itemId))
        .setRoutingKeyId(key.getKeyId())
        .setSealedRouting(ByteString.copyFrom(RoutingSeal.seal(key.getPublicKey().toByteArray(), key.getKeyId(),
            routing, RoutingSeal.sendBinding(itemId, body), RANDOM)))
        .setBody(ByteString.copyFrom(body))
        .setExpiresAt(Instant.now().plus(Duration.ofDays(1)).toEpochMilli())
        .build();
  }

  private FederatedItem good() {
    return item(LoadClient.random(16), mailbox, mailbox.capability(), LoadClient.random(1024));
  }

  private DeliverResponse deliver(FederatedItem... items) {
    return FederationGrpc.newBlockingStub(hostile).withDeadlineAfter(10, TimeUnit.SECONDS)
        .deliver(DeliverRequest.newBuilder().addAllItems(List.of(items)).build());
  }

  private static Status.Code code(ItemResult r) {
    return Status.fromCodeValue(r.getCode()).getCode();
  }

  @Test
  void aPeerWithoutAClientCertificateIsRefused() throws Exception {
    start(1000);
    ManagedChannel anonymous = peerChannel(b.address(), false);
    closer.add(anonymous::shutdownNow);
    StatusRuntimeException e = assertThrows(StatusRuntimeException.class,
        () -> FederationGrpc.newBlockingStub(anonymous).withDeadlineAfter(10, TimeUnit.SECONDS)
            .deliver(DeliverRequest.newBuilder().addItems(good()).build()));
    assertEquals(Status.Code.UNAUTHENTICATED, e.getStatus().getCode());
  }

  @Test
  void eachWrongItemGetsItsStatusNothingOfItIsStoredAndReplaysAreNotStoredAgain() throws Exception {
    start(1000);
    FederatedItem valid = good();
    List<FederatedItem> bad = new ArrayList<>();
    List<Status.Code> expected = new ArrayList<>();
    // A body of no bucket size.
    bad.add(item(LoadClient.random(16), mailbox, mailbox.capability(), LoadClient.random(1000)));
    expected.add(Status.Code.INVALID_ARGUMENT);
    // An item id of the wrong size.
    bad.add(good().toBuilder().setItemId(ByteString.copyFrom(LoadClient.random(8))).build());
    expected.add(Status.Code.INVALID_ARGUMENT);
    // Garbage for the routing part, of the right size and of another.
    bad.add(good().toBuilder().setSealedRouting(ByteString.copyFrom(LoadClient.random(RoutingSeal.SEALED_LENGTH))).build());
    expected.add(Status.Code.INVALID_ARGUMENT);
    bad.add(good().toBuilder().setSealedRouting(ByteString.copyFrom(LoadClient.random(100))).build());
    expected.add(Status.Code.INVALID_ARGUMENT);
    // A valid seal moved onto another body.
    bad.add(valid.toBuilder().setItemId(ByteString.copyFrom(LoadClient.random(16))).build());
    expected.add(Status.Code.INVALID_ARGUMENT);
    // A routing key this server does not have.
    bad.add(good().toBuilder().setRoutingKeyId(key.getKeyId() + 1).build());
    expected.add(Status.Code.FAILED_PRECONDITION);
    // A mailbox that does not live here.
    LoadClient.Mailbox elsewhere = new LoadClient.Mailbox(
        ByteString.copyFrom(LoadClient.random(32)), mailbox.owner(), mailbox.capability());
    bad.add(item(LoadClient.random(16), elsewhere, mailbox.capability(), LoadClient.random(1024)));
    expected.add(Status.Code.NOT_FOUND);
    // The wrong capability.
    bad.add(item(LoadClient.random(16), mailbox, LoadClient.random(32), LoadClient.random(1024)));
    expected.add(Status.Code.PERMISSION_DENIED);
    List<FederatedItem> batch = new ArrayList<>(bad);
    batch.add(valid);
    DeliverResponse r = deliver(batch.toArray(FederatedItem[]::new));
    assertEquals(batch.size(), r.getResultsCount());
    for (int i = 0; i < bad.size(); i++) {
      assertEquals(expected.get(i), code(r.getResults(i)), "item " + i + ": " + r.getResults(i));
    }
    assertEquals(Status.Code.OK, code(r.getResults(bad.size())), r.getResults(bad.size()).toString());
    // Replays, one by one and together: answered OK, never stored again.
    assertEquals(Status.Code.OK, code(deliver(valid).getResults(0)));
    DeliverResponse twice = deliver(valid, valid);
    assertEquals(Status.Code.OK, code(twice.getResults(0)));
    assertEquals(Status.Code.OK, code(twice.getResults(1)));
    // An oversize call is refused as a whole.
    StatusRuntimeException oversize = assertThrows(StatusRuntimeException.class, () -> deliver(
        item(LoadClient.random(16), mailbox, mailbox.capability(), LoadClient.random(65536)),
        item(LoadClient.random(16), mailbox, mailbox.capability(), LoadClient.random(65536))));
    assertEquals(Status.Code.RESOURCE_EXHAUSTED, oversize.getStatus().getCode());
    // A marker after everything: once it is here, all before it that would be stored are too.
    FederatedItem marker = good();
    assertEquals(Status.Code.OK, code(deliver(marker).getResults(0)));
    String markerId = java.util.HexFormat.of().formatHex(marker.getItemId().toByteArray());
    await().atMost(BOUND).until(() -> stored.contains(markerId));
    assertEquals(Set.of(java.util.HexFormat.of().formatHex(valid.getItemId().toByteArray()), markerId), stored);
    assertEquals(2, deliveries.get(), "one copy of the valid item and the marker, nothing else");
  }

  @Test
  void aFloodBeyondItsBudgetIsRefusedWhileAnHonestPeersItemsKeepFlowing() throws Exception {
    start(20);
    Thread flood = new Thread(() -> {
      for (int i = 0; i < 400 && !Thread.currentThread().isInterrupted(); i++) {
        try {
          deliver(good(), good(), good(), good(), good());
        } catch (StatusRuntimeException e) {
          if (e.getStatus().getCode() == Status.Code.RESOURCE_EXHAUSTED) {
            refused.incrementAndGet();
          }
        }
      }
    }, "flood");
    flood.start();
    ManagedChannel toA = LoadClient.channel(honest.address());
    closer.add(toA::shutdownNow);
    Forwarder alice = Forwarder.create(toA);
    RoutingKey bKey = alice.routingKey(toA, b.address());
    Set<String> sent = new java.util.HashSet<>();
    for (int i = 0; i < 30; i++) {
      byte[] itemId = LoadClient.random(16);
      alice.forward(toA, alice.request(b.address(), bKey, mailbox, itemId, LoadClient.random(1024)));
      sent.add(java.util.HexFormat.of().formatHex(itemId));
    }
    await().atMost(BOUND).until(() -> stored.containsAll(sent));
    flood.join(BOUND.toMillis());
    assertTrue(refused.get() > 0, "the flood went beyond its budget and was refused");
  }

  private final AtomicInteger refused = new AtomicInteger();
}
