package org.ferry.sdk;

import com.google.protobuf.ByteString;
import com.google.protobuf.InvalidProtocolBufferException;
import io.grpc.ManagedChannel;
import io.grpc.Server;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.inprocess.InProcessChannelBuilder;
import io.grpc.inprocess.InProcessServerBuilder;
import io.grpc.protobuf.services.HealthStatusManager;
import io.grpc.stub.StreamObserver;
import java.io.IOException;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneId;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Function;
import java.util.function.UnaryOperator;
import org.ferry.proto.ErrorReasons;
import org.ferry.proto.ForwardOutcomes;
import org.ferry.proto.RoutingKeys;
import org.ferry.proto.RoutingSeal;
import org.ferry.proto.ServerAddress;
import org.ferry.proto.v1.Ack;
import org.ferry.proto.v1.Challenge;
import org.ferry.proto.v1.CreateMailboxRequest;
import org.ferry.proto.v1.CreateMailboxResponse;
import org.ferry.proto.v1.DeleteMailboxRequest;
import org.ferry.proto.v1.DeleteMailboxResponse;
import org.ferry.proto.v1.Delivery;
import org.ferry.proto.v1.Envelope;
import org.ferry.proto.v1.ForwardOutcome;
import org.ferry.proto.v1.ForwardRequest;
import org.ferry.proto.v1.ForwardResponse;
import org.ferry.proto.v1.ForwardTakeRequest;
import org.ferry.proto.v1.ForwarderAuth;
import org.ferry.proto.v1.ForwardingGrpc;
import org.ferry.proto.v1.GetRoutingKeyRequest;
import org.ferry.proto.v1.InvitationsGrpc;
import org.ferry.proto.v1.MailboxesGrpc;
import org.ferry.proto.v1.PutInvitationRequest;
import org.ferry.proto.v1.PutInvitationResponse;
import org.ferry.proto.v1.ReceiveRequest;
import org.ferry.proto.v1.ReceiveResponse;
import org.ferry.proto.v1.RoutingKey;
import org.ferry.proto.v1.Routing;
import org.ferry.proto.v1.SendRequest;
import org.ferry.proto.v1.SendResponse;
import org.ferry.proto.v1.SignedRoutingKey;
import org.ferry.proto.v1.Subscribed;
import org.ferry.proto.v1.TakeInvitationRequest;
import org.ferry.proto.v1.TakeInvitationResponse;

/**
 * In-process stand-ins for Ferry servers that federate with each other, for SDK tests until the
 * real server side of Forwarding is merged: Mailboxes, Invitations and Health as a client uses
 * them, and Forwarding that opens the sealed routing part with the destination's routing key
 * (as the destination would), hands the item to the destination's mailboxes (which check the
 * capability like a real server) and puts the outcome in the forwarder mailbox. Every channel a
 * client asks for is recorded, by server address.
 */
public final class FakeFederation implements AutoCloseable {
  private final Map<String, FakeServer> byFingerprint = new ConcurrentHashMap<>();
  private final List<FakeServer> servers = new ArrayList<>();
  private final SecureRandom random = new SecureRandom();
  /** The time servers sign routing keys at; tests move it with their clients' clocks. */
  public final MutableClock clock = new MutableClock(Instant.now());

  public FakeServer server(String host) {
    FakeServer s = new FakeServer(host);
    servers.add(s);
    byFingerprint.put(s.address.fingerprintText(), s);
    return s;
  }

  /**
   * A client whose home server is {@code home}, whose every channel goes to these fakes and is
   * recorded in {@code opened}.
   */
  public FerryClient client(Path dir, Set<ServerAddress> opened) {
    FerryClient c = FerryClient.builder()
        .dataDirectory(dir)
        .storageKey(new byte[32])
        .clock(clock)
        .callTimeout(Duration.ofSeconds(10))
        .channels(opener(opened))
        .build();
    return c;
  }

  /**
   * Makes two clients contacts: {@code inviter} invites, {@code invitee} accepts (its card goes
   * to the inviter's mailbox), and the inviter receives until the card has arrived.
   */
  public static void connect(FerryClient inviter, String inviteeLabel, FerryClient invitee, String inviterLabel) {
    invitee.acceptInvitation(inviter.createInvitation(inviteeLabel).uri(), inviterLabel);
    org.awaitility.Awaitility.await().atMost(Duration.ofSeconds(20)).until(() -> {
      inviter.receive(Duration.ofMillis(100), m -> { });
      return inviter.contact(inviteeLabel).orElseThrow().state() == Contact.State.ESTABLISHED;
    });
  }

  /** Opens in-process channels to the fake with the address's fingerprint, noting each address. */
  public Function<ServerAddress, ManagedChannel> opener(Set<ServerAddress> opened) {
    return address -> {
      opened.add(address);
      FakeServer s = byFingerprint.get(address.fingerprintText());
      return InProcessChannelBuilder.forName(s == null ? "nowhere-" + address.fingerprintText() : s.name).build();
    };
  }

  @Override
  public void close() {
    servers.forEach(FakeServer::close);
  }

  /** A clock tests can move. */
  public static final class MutableClock extends Clock {
    private volatile Instant now;

    MutableClock(Instant now) {
      this.now = now;
    }

    public void advance(Duration d) {
      now = now.plus(d);
    }

    @Override
    public ZoneId getZone() {
      return ZoneOffset.UTC;
    }

    @Override
    public Clock withZone(ZoneId zone) {
      return this;
    }

    @Override
    public Instant instant() {
      return now;
    }
  }

  private static byte[] sha256(ByteString b) {
    try {
      return MessageDigest.getInstance("SHA-256").digest(b.toByteArray());
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException(e);
    }
  }

  static KeyPair ecKey() {
    try {
      KeyPairGenerator g = KeyPairGenerator.getInstance("EC");
      g.initialize(256);
      return g.generateKeyPair();
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException(e);
    }
  }

  private static final class Box {
    final ByteString capabilityHash;
    final Map<Long, Envelope> waiting = new LinkedHashMap<>();
    final Set<ByteString> seen = new HashSet<>();

    Box(ByteString capabilityHash) {
      this.capabilityHash = capabilityHash;
    }
  }

  private record Invitation(ByteString fetchTokenHash, ByteString blob, ByteString[] takenBy) {}

  /** One fake server. Its public fields are what tests look at and turn. */
  public final class FakeServer implements AutoCloseable {
    final String name = InProcessServerBuilder.generateName();
    public final KeyPair tlsKey = ecKey();
    public final ServerAddress address;
    public final RoutingSeal.KeyPair routing = RoutingSeal.generate(random);
    public final int routingKeyId = 7;
    /** Changes what GetRoutingKey hands out (a forgery, say). */
    public volatile UnaryOperator<SignedRoutingKey> tamper = UnaryOperator.identity();
    /** While set, outcomes are kept back until {@link #releaseOutcomes}. */
    public volatile boolean holdOutcomes;
    /** Refuses a forward with the status it gives (null: takes it). */
    public volatile Function<ForwardRequest, StatusRuntimeException> refuse;
    /** Replaces the outcome of each forward (EXPIRED, say); null, or a null answer, for the real one. */
    public volatile Function<ForwardRequest, ForwardOutcome> outcomeOverride;
    public final List<ForwardRequest> forwards = Collections.synchronizedList(new ArrayList<>());
    public final List<ForwardTakeRequest> takes = Collections.synchronizedList(new ArrayList<>());
    public final List<GetRoutingKeyRequest> keyRequests = Collections.synchronizedList(new ArrayList<>());
    private final List<Runnable> heldOutcomes = new ArrayList<>();
    private final Map<ByteString, Box> boxes = new LinkedHashMap<>();
    private final Map<ByteString, Invitation> invitations = new LinkedHashMap<>();
    private final List<Sub> subs = new ArrayList<>();
    private final AtomicLong deliveryIds = new AtomicLong();
    private final Server server;

    FakeServer(String host) {
      this.address = new ServerAddress(host, 7443, ServerAddress.fingerprintOf(tlsKey.getPublic()));
      HealthStatusManager health = new HealthStatusManager();
      health.setStatus("", io.grpc.health.v1.HealthCheckResponse.ServingStatus.SERVING);
      try {
        server = InProcessServerBuilder.forName(name)
            .addService(health.getHealthService())
            .addService(new Mailboxes())
            .addService(new Invitations())
            .addService(new Forwarding())
            .build()
            .start();
      } catch (IOException e) {
        throw new IllegalStateException(e);
      }
    }

    /** The routing key this server signs now. */
    public SignedRoutingKey signedRoutingKey() {
      Instant now = clock.instant();
      return RoutingKeys.sign(RoutingKey.newBuilder()
          .setKeyId(routingKeyId)
          .setPublicKey(ByteString.copyFrom(routing.publicKey()))
          .setNotBefore(now.minus(Duration.ofHours(1)).toEpochMilli())
          .setNotAfter(now.plus(Duration.ofDays(1)).toEpochMilli())
          .build(), tlsKey.getPrivate(), tlsKey.getPublic());
    }

    /** Opens a seal made for this server. */
    public Routing open(int keyId, ByteString sealed, byte[] binding) throws GeneralSecurityException {
      try {
        return Routing.parseFrom(RoutingSeal.open(routing.privateKey(), keyId, sealed.toByteArray(), binding));
      } catch (InvalidProtocolBufferException e) {
        throw new GeneralSecurityException(e);
      }
    }

    /** Forgets a mailbox, as a server that lost it (or let it expire) would. */
    public synchronized void dropMailbox(ByteString mailboxId) {
      boxes.remove(mailboxId);
    }

    /** How many envelopes wait in all mailboxes here. */
    public synchronized int waiting() {
      return boxes.values().stream().mapToInt(b -> b.waiting.size()).sum();
    }

    public void releaseOutcomes() {
      List<Runnable> due;
      synchronized (this) {
        due = new ArrayList<>(heldOutcomes);
        heldOutcomes.clear();
      }
      due.forEach(Runnable::run);
    }

    /** Stores an envelope as Mailboxes.Send does; throws the status a real server would. */
    synchronized void store(ByteString mailboxId, ByteString capability, Envelope envelope) {
      Box box = boxes.get(mailboxId);
      if (box == null) {
        throw Status.NOT_FOUND.withDescription("no such mailbox").asRuntimeException();
      }
      if (!MessageDigest.isEqual(box.capabilityHash.toByteArray(), sha256(capability))) {
        throw Status.PERMISSION_DENIED.withDescription("wrong send capability").asRuntimeException();
      }
      if (!box.seen.add(envelope.getId())) {
        return;
      }
      long id = deliveryIds.incrementAndGet();
      box.waiting.put(id, envelope);
      for (Sub s : subs) {
        if (s.mailboxes.contains(mailboxId)) {
          s.out.onNext(delivery(mailboxId, id, envelope));
        }
      }
    }

    private ReceiveResponse delivery(ByteString mailboxId, long id, Envelope envelope) {
      return ReceiveResponse.newBuilder()
          .setDelivery(Delivery.newBuilder().setMailboxId(mailboxId).setDeliveryId(id).setEnvelope(envelope))
          .build();
    }

    private synchronized void checkForwarder(ForwarderAuth auth) {
      Box box = boxes.get(auth.getMailboxId());
      if (box == null || !MessageDigest.isEqual(box.capabilityHash.toByteArray(), sha256(auth.getSendCapability()))) {
        throw Status.UNAUTHENTICATED.withDescription("not one of this server's forwarders").asRuntimeException();
      }
    }

    private FakeServer peer(String address) {
      FakeServer peer = byFingerprint.get(ServerAddress.parse(address).fingerprintText());
      if (peer == null) {
        throw Status.UNAVAILABLE.withDescription("peer unknown").asRuntimeException();
      }
      return peer;
    }

    private void outcome(ByteString forwarderMailbox, ForwardOutcome outcome, boolean hold) {
      Runnable put = () -> putOutcome(forwarderMailbox, outcome);
      synchronized (this) {
        if (hold) {
          heldOutcomes.add(put);
          return;
        }
      }
      put.run();
    }

    private synchronized void putOutcome(ByteString mailboxId, ForwardOutcome outcome) {
      Box box = boxes.get(mailboxId);
      byte[] id = new byte[16];
      random.nextBytes(id);
      Envelope e = Envelope.newBuilder().setId(ByteString.copyFrom(id))
          .setBody(ByteString.copyFrom(ForwardOutcomes.toBody(outcome))).build();
      long deliveryId = deliveryIds.incrementAndGet();
      box.waiting.put(deliveryId, e);
      for (Sub s : subs) {
        if (s.mailboxes.contains(mailboxId)) {
          s.out.onNext(delivery(mailboxId, deliveryId, e));
        }
      }
    }

    @Override
    public void close() {
      server.shutdownNow();
    }

    private final class Sub {
      final StreamObserver<ReceiveResponse> out;
      final Set<ByteString> mailboxes = new HashSet<>();

      Sub(StreamObserver<ReceiveResponse> out) {
        this.out = out;
      }
    }

    private final class Mailboxes extends MailboxesGrpc.MailboxesImplBase {
      @Override
      public void createMailbox(CreateMailboxRequest request, StreamObserver<CreateMailboxResponse> response) {
        byte[] id = new byte[32];
        random.nextBytes(id);
        synchronized (FakeServer.this) {
          boxes.put(ByteString.copyFrom(id), new Box(request.getSendCapabilityHash()));
        }
        response.onNext(CreateMailboxResponse.newBuilder().setMailboxId(ByteString.copyFrom(id)).build());
        response.onCompleted();
      }

      @Override
      public void send(SendRequest request, StreamObserver<SendResponse> response) {
        try {
          store(request.getMailboxId(), request.getSendCapability(), request.getEnvelope());
        } catch (StatusRuntimeException e) {
          response.onError(e);
          return;
        }
        response.onNext(SendResponse.getDefaultInstance());
        response.onCompleted();
      }

      @Override
      public void deleteMailbox(DeleteMailboxRequest request, StreamObserver<DeleteMailboxResponse> response) {
        synchronized (FakeServer.this) {
          boxes.remove(request.getMailboxId());
        }
        response.onNext(DeleteMailboxResponse.getDefaultInstance());
        response.onCompleted();
      }

      @Override
      public StreamObserver<ReceiveRequest> receive(StreamObserver<ReceiveResponse> out) {
        Sub sub = new Sub(out);
        byte[] nonce = new byte[32];
        random.nextBytes(nonce);
        synchronized (FakeServer.this) {
          subs.add(sub);
          out.onNext(ReceiveResponse.newBuilder()
              .setChallenge(Challenge.newBuilder().setNonce(ByteString.copyFrom(nonce))).build());
        }
        return new StreamObserver<>() {
          @Override
          public void onNext(ReceiveRequest r) {
            synchronized (FakeServer.this) {
              if (r.hasSubscribe()) {
                ByteString id = r.getSubscribe().getMailboxId();
                Box box = boxes.get(id);
                if (box != null && sub.mailboxes.add(id)) {
                  box.waiting.forEach((deliveryId, e) -> out.onNext(delivery(id, deliveryId, e)));
                }
                out.onNext(ReceiveResponse.newBuilder().setSubscribed(Subscribed.newBuilder().setMailboxId(id)).build());
              } else if (r.hasAck()) {
                Ack ack = r.getAck();
                Box box = boxes.get(ack.getMailboxId());
                if (box != null) {
                  box.waiting.remove(ack.getDeliveryId());
                }
              }
            }
          }

          @Override
          public void onError(Throwable t) {
            synchronized (FakeServer.this) {
              subs.remove(sub);
            }
          }

          @Override
          public void onCompleted() {
            synchronized (FakeServer.this) {
              subs.remove(sub);
            }
            out.onCompleted();
          }
        };
      }
    }

    /** Takes an invitation as TakeInvitation does. */
    synchronized ByteString take(ByteString mailboxId, ByteString fetchToken, ByteString takeId) {
      Invitation inv = invitations.get(mailboxId);
      if (inv == null || !MessageDigest.isEqual(inv.fetchTokenHash().toByteArray(), sha256(fetchToken))) {
        throw Status.NOT_FOUND.withDescription("no such invitation").asRuntimeException();
      }
      if (inv.takenBy()[0] != null && !inv.takenBy()[0].equals(takeId)) {
        throw ErrorReasons.withReason(Status.Code.NOT_FOUND, ErrorReasons.INVITATION_USED, "used");
      }
      inv.takenBy()[0] = takeId;
      return inv.blob();
    }

    private final class Invitations extends InvitationsGrpc.InvitationsImplBase {
      @Override
      public void putInvitation(PutInvitationRequest request, StreamObserver<PutInvitationResponse> response) {
        synchronized (FakeServer.this) {
          invitations.put(request.getMailboxId(),
              new Invitation(request.getFetchTokenHash(), request.getBlob(), new ByteString[1]));
        }
        response.onNext(PutInvitationResponse.getDefaultInstance());
        response.onCompleted();
      }

      @Override
      public void takeInvitation(TakeInvitationRequest request, StreamObserver<TakeInvitationResponse> response) {
        try {
          ByteString blob = take(request.getMailboxId(), request.getFetchToken(), request.getTakeId());
          response.onNext(TakeInvitationResponse.newBuilder().setBlob(blob).build());
          response.onCompleted();
        } catch (StatusRuntimeException e) {
          response.onError(e);
        }
      }
    }

    private final class Forwarding extends ForwardingGrpc.ForwardingImplBase {
      @Override
      public void getRoutingKey(GetRoutingKeyRequest request, StreamObserver<SignedRoutingKey> response) {
        try {
          keyRequests.add(request);
          checkForwarder(request.getForwarder());
          response.onNext(tamper.apply(peer(request.getServer()).signedRoutingKey()));
          response.onCompleted();
        } catch (StatusRuntimeException e) {
          response.onError(e);
        }
      }

      @Override
      public void forward(ForwardRequest request, StreamObserver<ForwardResponse> response) {
        // Taken before the answer: a test may turn them as soon as the client has it.
        boolean hold = holdOutcomes;
        Function<ForwardRequest, ForwardOutcome> override = outcomeOverride;
        ForwardOutcome.Builder outcome = ForwardOutcome.newBuilder()
            .setItemId(request.getItemId())
            .setDestination(request.getDestination());
        try {
          forwards.add(request);
          checkForwarder(request.getForwarder());
          Function<ForwardRequest, StatusRuntimeException> refusal = refuse;
          StatusRuntimeException refused = refusal == null ? null : refusal.apply(request);
          if (refused != null) {
            throw refused;
          }
          FakeServer peer = peer(request.getDestination());
          // What the destination does on Federation.Deliver.
          try {
            Routing routing = peer.open(request.getRoutingKeyId(), request.getSealedRouting(),
                RoutingSeal.sendBinding(request.getItemId().toByteArray(), request.getBody().toByteArray()));
            peer.store(routing.getSend().getMailboxId(), routing.getSend().getSendCapability(),
                Envelope.newBuilder().setId(request.getItemId()).setBody(request.getBody()).build());
            outcome.setResult(ForwardOutcome.Result.DELIVERED);
          } catch (GeneralSecurityException e) {
            outcome.setResult(ForwardOutcome.Result.FAILED).setCode(Status.Code.INVALID_ARGUMENT.value())
                .setMessage("routing part does not open").setHop("destination");
          } catch (StatusRuntimeException e) {
            outcome.setResult(ForwardOutcome.Result.FAILED).setCode(e.getStatus().getCode().value())
                .setMessage(String.valueOf(e.getStatus().getDescription())).setHop("destination");
          }
          response.onNext(ForwardResponse.getDefaultInstance());
          response.onCompleted();
        } catch (StatusRuntimeException e) {
          response.onError(e);
          return;
        }
        ForwardOutcome replaced = override != null ? override.apply(request) : null;
        outcome(request.getForwarder().getMailboxId(), replaced != null ? replaced : outcome.build(), hold);
      }

      @Override
      public void forwardTake(ForwardTakeRequest request, StreamObserver<TakeInvitationResponse> response) {
        try {
          takes.add(request);
          checkForwarder(request.getForwarder());
          FakeServer peer = peer(request.getDestination());
          Routing routing;
          try {
            routing = peer.open(request.getRoutingKeyId(), request.getSealedRouting(), request.getRequestId().toByteArray());
          } catch (GeneralSecurityException e) {
            throw Status.INVALID_ARGUMENT.withDescription("routing part does not open").asRuntimeException();
          }
          ByteString blob = peer.take(routing.getTake().getMailboxId(), routing.getTake().getFetchToken(),
              routing.getTake().getTakeId());
          response.onNext(TakeInvitationResponse.newBuilder().setBlob(blob).build());
          response.onCompleted();
        } catch (StatusRuntimeException e) {
          response.onError(e);
        }
      }
    }
  }
}
