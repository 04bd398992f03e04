package org.ferry.sdk.internal.federation;

import com.google.protobuf.ByteString;
import com.google.protobuf.InvalidProtocolBufferException;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.security.GeneralSecurityException;
import java.util.Optional;
import org.ferry.proto.ErrorReasons;
import org.ferry.proto.RoutingKeys;
import org.ferry.proto.RoutingSeal;
import org.ferry.proto.ServerAddress;
import org.ferry.proto.local.v1.OwnedMailbox;
import org.ferry.proto.v1.ForwardRequest;
import org.ferry.proto.v1.ForwardTakeRequest;
import org.ferry.proto.v1.ForwarderAuth;
import org.ferry.proto.v1.GetRoutingKeyRequest;
import org.ferry.proto.v1.MailboxAddress;
import org.ferry.proto.v1.RoutingKey;
import org.ferry.proto.v1.Routing;
import org.ferry.proto.v1.SendRouting;
import org.ferry.proto.v1.SignedRoutingKey;
import org.ferry.proto.v1.TakeRouting;
import org.ferry.sdk.FerryException;
import org.ferry.sdk.internal.ClientContext;
import org.ferry.sdk.internal.store.LocalStore;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * How items for other servers leave: through the home server's Forwarding service, never over a
 * connection of our own to the other server (docs/protocol.md, federation).
 *
 * <p>The part that names the destination mailbox and carries its send capability is sealed
 * ({@link RoutingSeal}) to the destination server's routing key, which the home server fetches
 * for us and which we trust only once {@link RoutingKeys#verify} checks it against the
 * fingerprint in the contact's address: without a verified key nothing is sent (fail closed).
 * Verified keys are kept in the local store per destination fingerprint until shortly before
 * they run out, and fetched again once when a destination says it no longer holds the key.
 *
 * <p>Every Forwarding call names our forwarder mailbox: one ordinary mailbox on the home server,
 * made the first time it is needed, whose send capability only this client knows. The home
 * server puts each forwarded item's outcome there (see {@code SendLog}).
 */
public final class HomeForwarder {
  private static final Logger log = LoggerFactory.getLogger(HomeForwarder.class);
  static final String MAILBOX = "forwarder/mailbox";
  static final String CAPABILITY = "forwarder/capability";
  static final String ROUTING_KEY = "routing-key/";

  private final ClientContext ctx;
  private volatile Runnable mailboxCreated = () -> { };

  public HomeForwarder(ClientContext ctx) {
    this.ctx = ctx;
  }

  /** Called once the forwarder mailbox was made, so the receive loop subscribes it. */
  public void onMailboxCreated(Runnable action) {
    this.mailboxCreated = action;
  }

  /** Our forwarder mailbox, if it was made already. */
  public Optional<OwnedMailbox> mailbox() {
    return ctx.store().get(MAILBOX).map(HomeForwarder::parseMailbox);
  }

  /** The forwarder mailbox's credentials, making the mailbox on the home server if need be. */
  synchronized ForwarderAuth auth() {
    Optional<OwnedMailbox> have = mailbox();
    Optional<byte[]> capability = ctx.store().get(CAPABILITY);
    if (have.isPresent() && capability.isPresent()) {
      return ForwarderAuth.newBuilder()
          .setMailboxId(have.get().getMailboxId())
          .setSendCapability(ByteString.copyFrom(capability.get()))
          .build();
    }
    byte[] fresh = ctx.randomBytes(32);
    OwnedMailbox made = ctx.createMailbox(fresh);
    try (LocalStore.Txn txn = ctx.store().begin()) {
      txn.put(MAILBOX, made.toByteArray());
      txn.put(CAPABILITY, fresh);
      txn.commit();
    }
    mailboxCreated.run();
    return ForwarderAuth.newBuilder()
        .setMailboxId(made.getMailboxId())
        .setSendCapability(ByteString.copyFrom(fresh))
        .build();
  }

  /** Forgets a forwarder mailbox the home server no longer knows, so that the next call makes one. */
  private synchronized void forgetMailbox(ForwarderAuth stale) {
    Optional<OwnedMailbox> have = mailbox();
    if (have.isPresent() && have.get().getMailboxId().equals(stale.getMailboxId())) {
      try (LocalStore.Txn txn = ctx.store().begin()) {
        txn.delete(MAILBOX);
        txn.delete(CAPABILITY);
        txn.commit();
      }
    }
  }

  /**
   * Hands one item for a mailbox on {@code destination} (another server) to the home server,
   * which answers only once it holds the item durably. Sending the same item again is safe.
   *
   * @throws StatusRuntimeException as the home server answered ({@link #failure} words it)
   * @throws FerryException ROUTING_KEY_UNVERIFIED (nothing was sent), and as making the
   *     forwarder mailbox failed
   */
  public void forward(ServerAddress destination, MailboxAddress to, byte[] itemId, byte[] body) {
    byte[] routing = Routing.newBuilder()
        .setSend(SendRouting.newBuilder()
            .setMailboxId(to.getMailboxId())
            .setSendCapability(to.getSendCapability()))
        .build()
        .toByteArray();
    byte[] binding = RoutingSeal.sendBinding(itemId, body);
    call(destination, (auth, key) -> ctx.forwarding().forward(ForwardRequest.newBuilder()
        .setForwarder(auth)
        .setDestination(destination.toString())
        .setItemId(ByteString.copyFrom(itemId))
        .setRoutingKeyId(key.getKeyId())
        .setSealedRouting(ByteString.copyFrom(seal(key, routing, binding)))
        .setBody(ByteString.copyFrom(body))
        .setTtlSeconds(0)
        .build()));
  }

  /**
   * Takes an invitation on {@code destination} (another server) through the home server.
   *
   * @param requestId 16 random bytes naming this take, the same on every retry of it
   * @return the invitation's blob
   * @throws StatusRuntimeException the destination's answer, passed through by the home server
   * @throws FerryException ROUTING_KEY_UNVERIFIED (nothing was sent)
   */
  public byte[] take(ServerAddress destination, byte[] mailboxId, byte[] fetchToken, byte[] takeId, byte[] requestId) {
    byte[] routing = Routing.newBuilder()
        .setTake(TakeRouting.newBuilder()
            .setMailboxId(ByteString.copyFrom(mailboxId))
            .setFetchToken(ByteString.copyFrom(fetchToken))
            .setTakeId(ByteString.copyFrom(takeId)))
        .build()
        .toByteArray();
    return call(destination, (auth, key) -> ctx.forwarding().forwardTake(ForwardTakeRequest.newBuilder()
        .setForwarder(auth)
        .setDestination(destination.toString())
        .setRequestId(ByteString.copyFrom(requestId))
        .setRoutingKeyId(key.getKeyId())
        .setSealedRouting(ByteString.copyFrom(seal(key, routing, requestId)))
        .build())).getBlob().toByteArray();
  }

  private interface ForwardingCall<T> {
    T run(ForwarderAuth auth, RoutingKey key);
  }

  /**
   * Makes {@code call} with our credentials and the destination's verified key; once again with
   * a fresh key if the destination no longer holds ours, and once again with a new forwarder
   * mailbox if the home server does not know ours (it lost it, or it expired).
   */
  private <T> T call(ServerAddress destination, ForwardingCall<T> call) {
    boolean refetched = false;
    boolean remade = false;
    while (true) {
      ForwarderAuth auth = auth();
      RoutingKey key = routingKey(destination, false);
      try {
        return call.run(auth, key);
      } catch (StatusRuntimeException e) {
        String reason = ErrorReasons.of(e).orElse("");
        if (!refetched && reason.equals(ErrorReasons.UNKNOWN_ROUTING_KEY)) {
          refetched = true;
          forgetRoutingKey(destination);
          continue;
        }
        if (!remade && e.getStatus().getCode() == Status.Code.UNAUTHENTICATED) {
          remade = true;
          log.info("the home server does not know our forwarder mailbox; making a new one");
          forgetMailbox(auth);
          continue;
        }
        throw e;
      }
    }
  }

  private byte[] seal(RoutingKey key, byte[] routing, byte[] binding) {
    return RoutingSeal.seal(key.getPublicKey().toByteArray(), key.getKeyId(), routing, binding, ctx.random());
  }

  /**
   * The verified routing key of {@code destination}: the one kept locally while it is valid for
   * longer than the allowed clock skew, else fetched through the home server and checked.
   *
   * @param fresh whether to fetch it even if one is kept
   * @throws FerryException ROUTING_KEY_UNVERIFIED if what the home server handed over does not
   *     verify
   * @throws StatusRuntimeException if the home server could not hand one over
   */
  public RoutingKey routingKey(ServerAddress destination, boolean fresh) {
    String name = routingKeyRecord(destination);
    long now = ctx.clock().millis();
    if (!fresh) {
      Optional<RoutingKey> kept = ctx.store().get(name).flatMap(bytes -> {
        try {
          RoutingKey key = RoutingKeys.verify(SignedRoutingKey.parseFrom(bytes), destination, ctx.clock().instant());
          return now + RoutingKeys.CLOCK_SKEW.toMillis() < key.getNotAfter() ? Optional.of(key) : Optional.empty();
        } catch (InvalidProtocolBufferException | GeneralSecurityException e) {
          return Optional.empty();
        }
      });
      if (kept.isPresent()) {
        return kept.get();
      }
    }
    SignedRoutingKey signed = ctx.forwarding().getRoutingKey(GetRoutingKeyRequest.newBuilder()
        .setForwarder(auth())
        .setServer(destination.toString())
        .build());
    RoutingKey key;
    try {
      key = RoutingKeys.verify(signed, destination, ctx.clock().instant());
    } catch (GeneralSecurityException e) {
      log.warn("a routing key the home server handed over does not verify; nothing was sent");
      throw new FerryException(FerryException.Reason.ROUTING_KEY_UNVERIFIED,
          "the routing key that home server " + ctx.homeServer().hostPort() + " handed over for server "
              + destination.hostPort() + " does not verify (" + e.getMessage() + "); nothing was sent, so that "
              + "no one learns which mailbox it is for. It is tried again later; if it persists, tell the "
              + "operator of your home server", e);
    }
    try (LocalStore.Txn txn = ctx.store().begin()) {
      txn.put(name, signed.toByteArray());
      txn.commit();
    }
    return key;
  }

  /** The local store record that keeps {@code destination}'s verified routing key. */
  public static String routingKeyRecord(ServerAddress destination) {
    return ROUTING_KEY + destination.fingerprintText();
  }

  /** Forgets the kept routing key of {@code destination}: the next use fetches it again. */
  public void forgetRoutingKey(ServerAddress destination) {
    try (LocalStore.Txn txn = ctx.store().begin()) {
      txn.delete(routingKeyRecord(destination));
      txn.commit();
    }
  }

  /**
   * A failed Forwarding call for {@code destination} as a {@link FerryException}, naming the
   * hop: the home server's own refusals, or the destination's as the home server passed them
   * through (a take's).
   */
  public FerryException failure(ServerAddress destination, StatusRuntimeException e) {
    String reason = ErrorReasons.of(e).orElse("");
    String home = ctx.homeServer().hostPort();
    String desc = e.getStatus().getDescription() == null
        ? e.getStatus().getCode().toString() : e.getStatus().getDescription();
    switch (reason) {
      case ErrorReasons.PEER_REFUSED -> {
        return new FerryException(FerryException.Reason.PEER_REFUSED,
            "home server " + home + " does not forward to server " + destination.hostPort() + ", or that server"
                + " does not take items from it: " + desc, e);
      }
      case ErrorReasons.PEER_QUEUE_FULL -> {
        return new FerryException(FerryException.Reason.RECIPIENT_FULL,
            "home server " + home + " holds as much for server " + destination.hostPort()
                + " as it allows now; try again later", e);
      }
      case ErrorReasons.RATE_LIMITED -> {
        String after = ErrorReasons.retryAfter(e)
            .map(d -> "; try again in " + Math.max(1, (d.toMillis() + 999) / 1000) + " s")
            .orElse("");
        return new FerryException(FerryException.Reason.RATE_LIMITED,
            "home server " + home + " forwards no more for this client right now" + after, e);
      }
      default -> {
        // Handled by status code below.
      }
    }
    return switch (e.getStatus().getCode()) {
      // A failure under us (our line to the home server: it carries the local cause), or the
      // home server's answer that it cannot reach the destination (for a take or a routing
      // key). Either way, try again later.
      case UNAVAILABLE -> e.getCause() != null
          ? ctx.net().failure(ctx.homeServer(), e)
          : new FerryException(FerryException.Reason.UNREACHABLE,
              "home server " + home + " cannot reach server " + destination.hostPort() + " now: " + desc, e);
      case DEADLINE_EXCEEDED, UNKNOWN -> ctx.net().failure(ctx.homeServer(), e);
      default -> new FerryException(FerryException.Reason.REJECTED,
          "server " + destination.hostPort() + " (through home server " + home + ") refused: " + desc
              + " (" + e.getStatus().getCode() + ")", e);
    };
  }

  private static OwnedMailbox parseMailbox(byte[] bytes) {
    try {
      return OwnedMailbox.parseFrom(bytes);
    } catch (InvalidProtocolBufferException e) {
      throw new FerryException(FerryException.Reason.STORAGE, "the forwarder mailbox record is unreadable", e);
    }
  }
}
