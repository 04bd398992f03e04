package org.ferry.server.internal.federation;

import static org.awaitility.Awaitility.await;

import com.google.protobuf.ByteString;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.netty.GrpcSslContexts;
import io.grpc.netty.NettyChannelBuilder;
import io.grpc.stub.StreamObserver;
import io.netty.handler.ssl.SslContextBuilder;
import io.netty.handler.ssl.util.InsecureTrustManagerFactory;
import java.io.IOException;
import java.nio.file.Path;
import java.security.KeyPair;
import java.security.SecureRandom;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Consumer;
import org.ferry.proto.ForwardOutcomes;
import org.ferry.proto.OwnerKeys;
import org.ferry.proto.RoutingKeys;
import org.ferry.proto.RoutingSeal;
import org.ferry.proto.ServerAddress;
import org.ferry.proto.v1.CreateMailboxRequest;
import org.ferry.proto.v1.Delivery;
import org.ferry.proto.v1.ForwardOutcome;
import org.ferry.proto.v1.ForwardRequest;
import org.ferry.proto.v1.ForwarderAuth;
import org.ferry.proto.v1.ForwardingGrpc;
import org.ferry.proto.v1.GetRoutingKeyRequest;
import org.ferry.proto.v1.MailboxesGrpc;
import org.ferry.proto.v1.ReceiveRequest;
import org.ferry.proto.v1.ReceiveResponse;
import org.ferry.proto.v1.Routing;
import org.ferry.proto.v1.RoutingKey;
import org.ferry.proto.v1.SendRouting;
import org.ferry.proto.v1.Subscribe;
import org.ferry.relay.internal.tls.TlsIdentity;
import org.ferry.server.FerryServer;
import org.ferry.server.internal.mailbox.MailboxId;
import org.ferry.server.internal.store.MailboxStore;
import org.ferry.server.testing.MutableClock;
import org.ferry.server.testing.Ports;

/** Real servers on loopback, clients without certificates, and peers with their own keys. */
final class FederationFixture {
  static final SecureRandom RANDOM = new SecureRandom();

  private FederationFixture() {}

  /** A server the test starts, stops and restarts on the same directory, port and clock. */
  static final class Node implements AutoCloseable {
    final Path dir;
    final int port;
    final MutableClock clock = new MutableClock(Instant.parse("2026-03-01T00:00:00Z"));
    private final Consumer<FerryServer.Builder> config;
    FerryServer server;
    private ManagedChannel client;
    private ServerAddress address;

    Node(Path dir, Consumer<FerryServer.Builder> config) throws IOException {
      this.dir = dir;
      // Below the ephemeral range: a restart on it cannot find it taken by an outgoing connection.
      this.port = Ports.belowEphemeral("127.0.0.1");
      this.config = config;
      start();
    }

    void start() throws IOException {
      FerryServer.Builder b = FerryServer.builder().dataDirectory(dir).listen("127.0.0.1", port)
          .clock(clock).ticker(clock::nanoTime)
          .sweepInterval(Duration.ofMillis(50))
          .federationRetry(Duration.ofMillis(50), Duration.ofMillis(400));
      config.accept(b);
      server = b.start();
      address = server.address();
      client = clientChannel(port, null);
    }

    void stop() {
      client.shutdownNow();
      server.close();
      server = null;
    }

    ServerAddress address() {
      return address;
    }

    ManagedChannel client() {
      return client;
    }

    ForwardingGrpc.ForwardingBlockingStub forwarding() {
      return ForwardingGrpc.newBlockingStub(client).withDeadlineAfter(30, TimeUnit.SECONDS);
    }

    Box createMailbox() {
      KeyPair owner = OwnerKeys.generate();
      byte[] cap = bytes(32);
      ByteString id = MailboxesGrpc.newBlockingStub(client).createMailbox(CreateMailboxRequest.newBuilder()
              .setOwnerKey(ByteString.copyFrom(OwnerKeys.encode(owner.getPublic())))
              .setSendCapabilityHash(ByteString.copyFrom(org.ferry.server.internal.util.Bytes.sha256(cap)))
              .build())
          .getMailboxId();
      return new Box(id, owner, cap);
    }

    /** Envelopes waiting in {@code box}: read from the store, with the server stopped. */
    long storedIn(Box box) throws IOException {
      boolean running = server != null;
      if (running) {
        stop();
      }
      try (MailboxStore store = MailboxStore.open(dir.resolve("store"))) {
        return store.usage(new MailboxId(box.id().toByteArray())).count();
      } finally {
        if (running) {
          start();
        }
      }
    }

    /** The envelope ids waiting in {@code box}, in the order they were stored: read with the server stopped. */
    List<ByteString> idsIn(Box box) throws IOException {
      boolean running = server != null;
      if (running) {
        stop();
      }
      try (MailboxStore store = MailboxStore.open(dir.resolve("store"))) {
        return store.read(new MailboxId(box.id().toByteArray()), 0, 100_000).envelopes().stream()
            .map(e -> ByteString.copyFrom(e.envelopeId())).toList();
      } finally {
        if (running) {
          start();
        }
      }
    }

    /** Items waiting in the outbound queue: read from the store, with the server stopped. */
    long outboundWaiting() throws IOException {
      boolean running = server != null;
      if (running) {
        stop();
      }
      try (MailboxStore store = MailboxStore.open(dir.resolve("store"))) {
        return store.outboundCounts().values().stream().mapToLong(Long::longValue).sum();
      } finally {
        if (running) {
          start();
        }
      }
    }

    @Override
    public void close() {
      if (server != null) {
        stop();
      }
    }
  }

  /** A mailbox with its owner key and send capability. */
  record Box(ByteString id, KeyPair owner, byte[] capability) {
    ForwarderAuth auth() {
      return ForwarderAuth.newBuilder().setMailboxId(id).setSendCapability(ByteString.copyFrom(capability)).build();
    }
  }

  /** A TLS channel to a server on loopback; with {@code identity}, presenting it as a client certificate. */
  static ManagedChannel clientChannel(int port, TlsIdentity identity) {
    try {
      SslContextBuilder ssl = GrpcSslContexts.forClient().trustManager(InsecureTrustManagerFactory.INSTANCE);
      if (identity != null) {
        ssl.keyManager(identity.privateKey(), identity.certificate());
      }
      return NettyChannelBuilder.forAddress("127.0.0.1", port).sslContext(ssl.build()).build();
    } catch (javax.net.ssl.SSLException e) {
      throw new IllegalStateException(e);
    }
  }

  /** A peer server's key (its own, made for the test). */
  static TlsIdentity peerIdentity(Path dir) throws IOException {
    return TlsIdentity.loadOrCreate(dir, "peer", "peer", RANDOM);
  }

  static String fingerprintOf(TlsIdentity identity) {
    return ServerAddress.fingerprintText(ServerAddress.fingerprintOf(identity.certificate().getPublicKey()));
  }

  static byte[] bytes(int n) {
    byte[] b = new byte[n];
    RANDOM.nextBytes(b);
    return b;
  }

  /** The destination's routing key, fetched through the home server and checked as a client would. */
  static RoutingKey routingKey(Node home, ServerAddress destination, Box forwarder, Instant now) throws Exception {
    return RoutingKeys.verify(home.forwarding().getRoutingKey(GetRoutingKeyRequest.newBuilder()
        .setForwarder(forwarder.auth()).setServer(destination.toString()).build()), destination, now);
  }

  static byte[] sealSend(RoutingKey key, ByteString mailbox, byte[] capability, byte[] itemId, byte[] body) {
    byte[] routing = Routing.newBuilder().setSend(SendRouting.newBuilder()
        .setMailboxId(mailbox).setSendCapability(ByteString.copyFrom(capability))).build().toByteArray();
    return RoutingSeal.seal(key.getPublicKey().toByteArray(), key.getKeyId(), routing,
        RoutingSeal.sendBinding(itemId, body), RANDOM);
  }

  /** A Forward for {@code to} on the destination, sealed right. */
  static ForwardRequest forwardTo(ServerAddress destination, RoutingKey key, Box forwarder, Box to, byte[] itemId) {
    byte[] body = bytes(1024);
    return ForwardRequest.newBuilder()
        .setForwarder(forwarder.auth())
        .setDestination(destination.toString())
        .setItemId(ByteString.copyFrom(itemId))
        .setRoutingKeyId(key.getKeyId())
        .setSealedRouting(ByteString.copyFrom(sealSend(key, to.id(), to.capability(), itemId, body)))
        .setBody(ByteString.copyFrom(body))
        .build();
  }

  /** An owner's receive stream that collects the outcomes put in a forwarder mailbox. */
  static final class Outcomes implements AutoCloseable {
    private final List<ForwardOutcome> outcomes = new CopyOnWriteArrayList<>();
    private final AtomicReference<byte[]> nonce = new AtomicReference<>();
    private final StreamObserver<ReceiveRequest> requests;

    Outcomes(Node node, Box box) {
      requests = MailboxesGrpc.newStub(node.client()).receive(new StreamObserver<>() {
        @Override
        public void onNext(ReceiveResponse r) {
          if (r.hasChallenge()) {
            nonce.set(r.getChallenge().getNonce().toByteArray());
          } else if (r.hasDelivery()) {
            Delivery d = r.getDelivery();
            try {
              outcomes.add(ForwardOutcomes.fromBody(d.getEnvelope().getBody().toByteArray()));
            } catch (com.google.protobuf.InvalidProtocolBufferException e) {
              throw new AssertionError("not an outcome body", e);
            }
            // Acknowledged, as a client does, so that the server's delivery window moves on.
            synchronized (Outcomes.this) {
              requests.onNext(ReceiveRequest.newBuilder().setAck(org.ferry.proto.v1.Ack.newBuilder()
                  .setMailboxId(d.getMailboxId()).setDeliveryId(d.getDeliveryId())).build());
            }
          }
        }

        @Override
        public void onError(Throwable t) {
          if (Status.fromThrowable(t).getCode() != Status.Code.CANCELLED
              && Status.fromThrowable(t).getCode() != Status.Code.UNAVAILABLE) {
            throw new AssertionError(t);
          }
        }

        @Override
        public void onCompleted() {}
      });
      await().atMost(Duration.ofSeconds(10)).until(() -> nonce.get() != null);
      synchronized (this) {
        requests.onNext(ReceiveRequest.newBuilder().setSubscribe(Subscribe.newBuilder().setMailboxId(box.id())
          .setSignature(ByteString.copyFrom(OwnerKeys.sign(box.owner().getPrivate(), OwnerKeys.RECEIVE_CONTEXT,
              nonce.get(), box.id().toByteArray())))).build());
      }
    }

    /** Waits (at most 30 s) for {@code n} outcomes and returns all so far. */
    List<ForwardOutcome> waitFor(int n) {
      org.awaitility.Awaitility.await().atMost(Duration.ofSeconds(30)).until(() -> outcomes.size() >= n);
      return List.copyOf(outcomes);
    }

    @Override
    public void close() {
      try {
        requests.onCompleted();
      } catch (IllegalStateException e) {
        // ended already
      }
    }
  }
}
