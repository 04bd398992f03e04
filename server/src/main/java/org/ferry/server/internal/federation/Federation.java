package org.ferry.server.internal.federation;

import com.google.protobuf.ByteString;
import io.grpc.ServerInterceptors;
import io.grpc.ServerServiceDefinition;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.io.IOException;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.X509ExtendedTrustManager;
import org.ferry.proto.ErrorReasons;
import org.ferry.proto.PaddingBuckets;
import org.ferry.proto.RoutingKeys;
import org.ferry.proto.RoutingSeal;
import org.ferry.proto.ServerAddress;
import org.ferry.proto.v1.FederatedItem;
import org.ferry.proto.v1.FederatedTakeRequest;
import org.ferry.proto.v1.FederationGrpc;
import org.ferry.proto.v1.FederationRoutingKeyRequest;
import org.ferry.proto.v1.ForwardRequest;
import org.ferry.proto.v1.ForwardTakeRequest;
import org.ferry.proto.v1.ForwarderAuth;
import org.ferry.proto.v1.ItemResult;
import org.ferry.proto.v1.Routing;
import org.ferry.proto.v1.RoutingKey;
import org.ferry.proto.v1.SignedRoutingKey;
import org.ferry.proto.v1.TakeInvitationResponse;
import org.ferry.proto.v1.TakeRouting;
import org.ferry.relay.internal.tls.TlsIdentity;
import org.ferry.server.internal.grpc.ErrorMappingInterceptor;
import org.ferry.server.internal.grpc.GrpcErrors;
import org.ferry.server.internal.mailbox.MailboxId;
import org.ferry.server.internal.mailbox.MailboxManager;
import org.ferry.server.internal.metrics.ServerMetrics;
import org.ferry.server.internal.store.MailboxStore;
import org.ferry.server.internal.store.OutboundItem;
import org.ferry.server.internal.time.ServerClock;

/**
 * Federation, both ends: the Forwarding service for this server's clients (custody, routing
 * keys, takes on other servers), the Federation service for peer servers, the outbound lanes
 * and the expiry of what they hold. See {@code docs/protocol.md}, "Federation".
 */
public final class Federation implements AutoCloseable {
  private static final org.slf4j.Logger log = org.slf4j.LoggerFactory.getLogger(Federation.class);
  /** How long a ForwardTake waits for the destination. */
  static final Duration TAKE_DEADLINE = Duration.ofSeconds(20);
  /** How long fetching a peer's routing key may take. */
  static final Duration KEY_DEADLINE = Duration.ofSeconds(15);
  private static final int MAX_FORWARDERS = 100_000;

  /** This server's fingerprint: Forward to it stores here. */
  private final byte[] self;
  private final MailboxManager mailboxes;
  private final ServerClock clock;
  private final FederationOptions options;
  private final RoutingKeyring keyring;
  private final PeerPolicy policy;
  private final PeerChannels channels;
  private final InboundItems inbound;
  private final Outbound outbound;
  private final Map<MailboxId, RateBudget> forwarders = new ConcurrentHashMap<>();
  /** Peers' routing keys, each verified once when fetched, kept while valid. */
  private final Map<ServerAddress, VerifiedKey> keyCache = new ConcurrentHashMap<>();

  private record VerifiedKey(SignedRoutingKey signed, RoutingKey key) {}

  private Federation(byte[] self, MailboxManager mailboxes, ServerClock clock, FederationOptions options,
      RoutingKeyring keyring, PeerChannels channels, MailboxStore store,
      ServerMetrics metrics, SecureRandom random, ScheduledExecutorService scheduler) {
    this.self = self.clone();
    this.mailboxes = mailboxes;
    this.clock = clock;
    this.options = options;
    this.keyring = keyring;
    this.channels = channels;
    this.policy = new PeerPolicy(options, clock::nanoTime);
    this.inbound = new InboundItems(mailboxes, store, keyring, clock, metrics);
    this.outbound = new Outbound(store, clock, mailboxes.storageBudget(), options, policy, channels, metrics,
        random, scheduler, mailboxes.defaultTtl());
  }

  /**
   * Loads or makes the routing key in {@code identityDir}, and starts the lanes of every
   * destination with items waiting. {@code scheduler} runs the lanes; the caller shuts it down
   * after {@link #close}.
   */
  public static Federation start(Path identityDir, TlsIdentity tls, MailboxManager mailboxes,
      MailboxStore store, ServerClock clock, FederationOptions options, ServerMetrics metrics,
      SecureRandom random, ScheduledExecutorService scheduler) throws IOException {
    if (options.mode() == FederationOptions.Mode.ALLOWLIST && options.allow().isEmpty()) {
      log.warn("federation is allowlist but no peer is allowed (--federation-allow): no server can be reached or reach this one");
    }
    for (String both : options.allow()) {
      if (options.deny().contains(both)) {
        log.warn("peer {} is both allowed and denied: it is denied", ServerMetrics.peerLabel(both));
      }
    }
    RoutingKeyring keyring = RoutingKeyring.loadOrCreate(identityDir, tls, clock.instant(), random);
    byte[] self = ServerAddress.fingerprintOf(tls.certificate().getPublicKey());
    Federation f = new Federation(self, mailboxes, clock, options, keyring, new PeerChannels(tls, options), store,
        metrics, random, scheduler);
    metrics.federationQueue(f.outbound::waiting);
    f.outbound.start();
    return f;
  }

  /**
   * Trust for the server's port: any client certificate passes TLS (none is needed); the
   * Federation service identifies peers by the key, other services ignore it.
   */
  public static X509ExtendedTrustManager clientCertificateTrust() {
    return PeerTrust.anyClient();
  }

  /** The Forwarding and Federation services, with the error mapper inside. */
  public List<ServerServiceDefinition> services(ErrorMappingInterceptor errors) {
    return List.of(
        ServerInterceptors.intercept(new ForwardingGrpcService(this), errors),
        ServerInterceptors.intercept(new FederationGrpcService(this), errors, new PeerAuthInterceptor()));
  }

  /**
   * For {@code ferry server status}: the peer policy's {@code mode}, {@code outbound_items}
   * waiting for other servers in all and their {@code outbound_bytes} (bodies; they count against
   * the storage budget), and {@code peers}, one entry per destination this server
   * has delivered to or holds items for since it started (see {@code Outbound#status}).
   */
  public Map<String, Object> status() {
    Map<String, Object> m = new java.util.LinkedHashMap<>();
    m.put("mode", options.mode().name().toLowerCase(java.util.Locale.ROOT));
    m.put("outbound_items", outbound.waiting().values().stream().mapToLong(Long::longValue).sum());
    m.put("outbound_bytes", outbound.store().outboundBytes());
    m.put("peers", outbound.status());
    return m;
  }

  /** Removes outbound items whose time ran out (telling their forwarders) and old item ids. */
  public int sweepExpired() {
    int removed = outbound.sweepExpired();
    outbound.store().deleteExpiredSeen(clock.instant());
    return removed;
  }

  RoutingKeyring keyring() {
    return keyring;
  }

  PeerPolicy policy() {
    return policy;
  }

  InboundItems inbound() {
    return inbound;
  }

  /** Checks a forwarder and takes one item of {@code bytes} from its budget. */
  void authenticate(ForwarderAuth auth, int bytes) {
    if (auth.getMailboxId().size() != MailboxId.LENGTH || auth.getSendCapability().size() != 32) {
      throw GrpcErrors.unauthenticated("forwarder needs a 32-byte mailbox id and a 32-byte send capability");
    }
    MailboxId id = new MailboxId(auth.getMailboxId().toByteArray());
    mailboxes.authenticateForwarder(id, auth.getSendCapability().toByteArray());
    if (forwarders.size() >= MAX_FORWARDERS) {
      forwarders.clear();
    }
    RateBudget budget = forwarders.computeIfAbsent(id, k -> new RateBudget(clock::nanoTime,
        options.forwardItemsPerSecond(), options.forwardItemsPerSecond() * PeerPolicy.BYTES_PER_ITEM));
    Duration wait = budget.tryTake(1, bytes);
    if (!wait.isZero()) {
      throw ErrorReasons.withRetry(Status.Code.RESOURCE_EXHAUSTED, ErrorReasons.RATE_LIMITED,
          "too many forwards lately; try again later", wait);
    }
  }

  private ServerAddress destination(String text) {
    try {
      return ServerAddress.parse(text);
    } catch (IllegalArgumentException e) {
      throw GrpcErrors.invalidArgument("destination must be HOST:PORT#FINGERPRINT");
    }
  }

  private boolean isSelf(ServerAddress address) {
    return MessageDigest.isEqual(address.fingerprint(), self);
  }

  private void requireAllowed(ServerAddress peer) {
    if (!policy.allows(peer.fingerprint())) {
      throw ErrorReasons.withReason(Status.Code.FAILED_PRECONDITION, ErrorReasons.PEER_REFUSED,
          "this server does not federate with that server");
    }
  }

  /** This server's routing key, or the peer's: fetched over federation, checked, cached until it runs out. */
  SignedRoutingKey routingKeyOf(String server) {
    ServerAddress peer = destination(server);
    if (isSelf(peer)) {
      return keyring.signed();
    }
    requireAllowed(peer);
    Instant now = clock.instant();
    VerifiedKey cached = keyCache.get(peer);
    if (cached != null) {
      if (RoutingKeys.validAt(cached.key(), now)) {
        return cached.signed();
      }
      keyCache.remove(peer, cached);
    }
    SignedRoutingKey fetched;
    try {
      fetched = FederationGrpc.newBlockingStub(channels.channel(peer))
          .withDeadlineAfter(KEY_DEADLINE.toMillis(), TimeUnit.MILLISECONDS)
          .getRoutingKey(FederationRoutingKeyRequest.getDefaultInstance());
    } catch (StatusRuntimeException e) {
      if (ErrorReasons.of(e).filter(ErrorReasons.PEER_REFUSED::equals).isPresent()) {
        throw ErrorReasons.withReason(Status.Code.FAILED_PRECONDITION, ErrorReasons.PEER_REFUSED,
            "that server does not federate with this one");
      }
      throw Status.UNAVAILABLE.withDescription("cannot reach that server for its routing key; try again later")
          .asRuntimeException();
    }
    try {
      RoutingKey key = RoutingKeys.verify(fetched, peer, now);
      if (key.getNotAfter() > now.toEpochMilli()) {
        keyCache.put(peer, new VerifiedKey(fetched, key));
      }
    } catch (GeneralSecurityException e) {
      throw Status.UNAVAILABLE.withDescription("that server's routing key does not check out").asRuntimeException();
    }
    return fetched;
  }

  /** Custody of one item (or, for this server itself, storing it here). */
  void forward(ForwardRequest request) {
    ServerAddress to = destination(request.getDestination());
    if (request.getItemId().size() != 16) {
      throw GrpcErrors.invalidArgument("item_id must be 16 bytes, got %d", request.getItemId().size());
    }
    if (!PaddingBuckets.isBucketSize(request.getBody().size())) {
      throw GrpcErrors.invalidArgument("body must be one of the padding bucket sizes, got %d bytes",
          request.getBody().size());
    }
    if (request.getSealedRouting().size() != RoutingSeal.SEALED_LENGTH) {
      throw GrpcErrors.invalidArgument("sealed_routing must be %d bytes, got %d", RoutingSeal.SEALED_LENGTH,
          request.getSealedRouting().size());
    }
    long ttl = Integer.toUnsignedLong(request.getTtlSeconds());
    Duration max = mailboxes.defaultTtl();
    Duration effective = ttl == 0 || ttl > max.toSeconds() ? max : Duration.ofSeconds(ttl);
    Instant expiresAt = clock.instant().plus(effective);
    if (isSelf(to)) {
      ItemResult r = inbound.deliver(self, FederatedItem.newBuilder()
          .setItemId(request.getItemId())
          .setRoutingKeyId(request.getRoutingKeyId())
          .setSealedRouting(request.getSealedRouting())
          .setBody(request.getBody())
          .setExpiresAt(expiresAt.toEpochMilli())
          .build()).join();
      if (r.getCode() != Status.Code.OK.value()) {
        throw toException(r);
      }
      return;
    }
    requireAllowed(to);
    OutboundItem item = new OutboundItem(to.toString(), request.getItemId().toByteArray(),
        request.getRoutingKeyId(), request.getSealedRouting().toByteArray(), request.getBody().toByteArray(),
        expiresAt, new MailboxId(request.getForwarder().getMailboxId().toByteArray()));
    try {
      outbound.enqueue(to, item).join();
    } catch (CompletionException e) {
      throw e.getCause() instanceof RuntimeException r ? r : e;
    }
  }

  private static StatusRuntimeException toException(ItemResult r) {
    Status.Code code = Status.fromCodeValue(r.getCode()).getCode();
    if (r.getReason().isEmpty()) {
      return Status.fromCode(code).withDescription(r.getMessage()).asRuntimeException();
    }
    if (r.getRetryAfterMillis() > 0) {
      return ErrorReasons.withRetry(code, r.getReason(), r.getMessage(), Duration.ofMillis(r.getRetryAfterMillis()));
    }
    return ErrorReasons.withReason(code, r.getReason(), r.getMessage());
  }

  /** A take on another server (or this one), synchronously. */
  TakeInvitationResponse forwardTake(ForwardTakeRequest request) {
    ServerAddress to = destination(request.getDestination());
    checkTake(request.getRequestId(), request.getSealedRouting());
    if (isSelf(to)) {
      byte[] blob = takeLocally(request.getRequestId(), request.getRoutingKeyId(), request.getSealedRouting());
      return TakeInvitationResponse.newBuilder().setBlob(ByteString.copyFrom(blob)).build();
    }
    requireAllowed(to);
    try {
      return FederationGrpc.newBlockingStub(channels.channel(to))
          .withDeadlineAfter(TAKE_DEADLINE.toMillis(), TimeUnit.MILLISECONDS)
          .take(FederatedTakeRequest.newBuilder()
              .setRequestId(request.getRequestId())
              .setRoutingKeyId(request.getRoutingKeyId())
              .setSealedRouting(request.getSealedRouting())
              .build());
    } catch (StatusRuntimeException e) {
      Status.Code code = e.getStatus().getCode();
      if (code == Status.Code.UNAVAILABLE || code == Status.Code.DEADLINE_EXCEEDED
          || code == Status.Code.UNAUTHENTICATED || code == Status.Code.UNKNOWN || code == Status.Code.INTERNAL) {
        throw Status.UNAVAILABLE.withDescription("cannot reach that server in time; try again later")
            .asRuntimeException();
      }
      if (code == Status.Code.PERMISSION_DENIED
          && ErrorReasons.of(e).filter(ErrorReasons.PEER_REFUSED::equals).isPresent()) {
        throw ErrorReasons.withReason(Status.Code.FAILED_PRECONDITION, ErrorReasons.PEER_REFUSED,
            "that server does not federate with this one");
      }
      // The destination's answer as it gave it (NOT_FOUND INVITATION_USED and the like).
      throw e;
    }
  }

  private static void checkTake(ByteString requestId, ByteString sealed) {
    if (requestId.size() != 16) {
      throw GrpcErrors.invalidArgument("request_id must be 16 bytes, got %d", requestId.size());
    }
    if (sealed.size() != RoutingSeal.SEALED_LENGTH) {
      throw GrpcErrors.invalidArgument("sealed_routing must be %d bytes, got %d", RoutingSeal.SEALED_LENGTH,
          sealed.size());
    }
  }

  /** Opens a take's routing part (bound to its request id) and takes the invitation here. */
  byte[] takeLocally(ByteString requestId, int keyId, ByteString sealed) {
    checkTake(requestId, sealed);
    Routing routing;
    try {
      routing = keyring.open(keyId, sealed.toByteArray(), requestId.toByteArray());
    } catch (RoutingKeyring.RefusedException e) {
      throw e.unknownKey
          ? ErrorReasons.withReason(Status.Code.FAILED_PRECONDITION, ErrorReasons.UNKNOWN_ROUTING_KEY, e.getMessage())
          : GrpcErrors.invalidArgument("%s", e.getMessage());
    }
    if (routing.getKindCase() != Routing.KindCase.TAKE) {
      throw GrpcErrors.invalidArgument("the routing part is not for a take");
    }
    TakeRouting take = routing.getTake();
    if (take.getMailboxId().size() != MailboxId.LENGTH || take.getFetchToken().size() != 32
        || (take.getTakeId().size() != 0 && take.getTakeId().size() != 16)) {
      throw GrpcErrors.invalidArgument(
          "the routing part needs a 32-byte mailbox id, a 32-byte fetch token and an empty or 16-byte take id");
    }
    return mailboxes.takeInvitation(new MailboxId(take.getMailboxId().toByteArray()),
        take.getFetchToken().toByteArray(), take.getTakeId().toByteArray());
  }

  @Override
  public void close() {
    outbound.close();
    channels.close();
  }
}
