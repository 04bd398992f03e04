package org.ferry.sdk;

import com.google.protobuf.ByteString;
import io.grpc.StatusRuntimeException;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse;
import io.grpc.health.v1.HealthGrpc;
import java.io.IOException;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Function;
import org.ferry.datadir.DataDirectoryInUseException;
import org.ferry.datadir.DataDirectoryLock;
import org.ferry.proto.BridgeLine;
import org.ferry.proto.ServerAddress;
import org.ferry.proto.local.v1.ContactRecord;
import org.ferry.proto.local.v1.LocalIdentity;
import org.ferry.proto.v1.Content;
import org.ferry.proto.v1.Text;
import org.ferry.sdk.internal.ClientContext;
import org.ferry.sdk.internal.LocalIdentityStore;
import org.ferry.sdk.internal.carrier.CarrierConnector;
import org.ferry.sdk.internal.carrier.ProxySettings;
import org.ferry.sdk.internal.contacts.ContactBook;
import org.ferry.sdk.internal.crypto.EnvelopeSealer;
import org.ferry.sdk.internal.dial.Dialer;
import org.ferry.sdk.internal.dial.RouteBook;
import org.ferry.sdk.internal.federation.HomeForwarder;
import org.ferry.sdk.internal.invite.InvitationManager;
import org.ferry.sdk.internal.messaging.MessageReceiver;
import org.ferry.sdk.internal.messaging.MessageSender;
import org.ferry.sdk.internal.messaging.Outbox;
import org.ferry.sdk.internal.messaging.SendLog;
import org.ferry.sdk.internal.messaging.SessionHealer;
import org.ferry.sdk.internal.net.ServerConnections;
import org.ferry.sdk.internal.signal.ProtocolStore;
import org.ferry.sdk.internal.signal.SafetyNumbers;
import org.ferry.sdk.internal.store.LocalStore;
import org.signal.libsignal.protocol.IdentityKey;
import org.signal.libsignal.protocol.IdentityKeyPair;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A Ferry user on one device: identity, contacts, sessions and the connection to their home
 * server. Safe to use from many threads at once: sends never wait for a receive, and local
 * changes are atomic (see docs/sdk.md). Apps that stay open call {@link #start} and
 * {@link #addListener}; scripts use the blocking {@link #send} and {@link #receive}.
 *
 * <pre>{@code
 * try (FerryClient alice = FerryClient.builder()
 *     .dataDirectory(Path.of("alice"))
 *     .storageKey(keyFromYourKeystore)
 *     .build()) {
 *   if (!alice.isInitialized()) {
 *     alice.initialize(ServerAddress.parse("127.0.0.1:7443#..."));
 *   }
 *   Invitation invitation = alice.createInvitation("bob");
 *   // show invitation.uri() to Bob as a QR code; once he has accepted:
 *   alice.receive(Duration.ofSeconds(5), message -> show(message));
 *   alice.send("bob", "hello");
 * }
 * }</pre>
 *
 * <p>Every method throws {@link FerryException} with a {@link FerryException.Reason} when it
 * cannot do its job; local state is then as it was, unless the method says otherwise.
 */
public final class FerryClient implements AutoCloseable {
  /** How long an invitation stays valid unless the caller says otherwise. */
  public static final Duration DEFAULT_INVITATION_VALIDITY = Duration.ofDays(7);
  /** The longest an invitation may stay valid (servers keep bundles no longer). */
  public static final Duration MAX_INVITATION_VALIDITY = Duration.ofDays(30);
  /**
   * The most text one message holds, in bytes of UTF-8: what is left of the largest envelope
   * (64 KiB, less sealing) after the room kept for the message's framing and the libsignal
   * message around it (the first messages of a session carry the PQXDH prekey message and its
   * Kyber ciphertext). That is this many characters of ASCII text, half as many of Greek,
   * Cyrillic, Hebrew or Arabic, a third of most other scripts, a quarter of emoji.
   */
  public static final int MAX_TEXT_BYTES = EnvelopeSealer.maxMessage() - 2048;
  /** How long {@link #send} waits for an invited contact's acceptance once subscribed: 1 s. */
  static final Duration ACCEPTANCE_WAIT = Duration.ofSeconds(1);
  private static final Logger log = LoggerFactory.getLogger(FerryClient.class);

  private final ClientContext ctx;
  private final CarrierConnector connector;
  private final Optional<DataDirectoryLock> ownLock;
  private final HomeForwarder forwarder;
  private final InvitationManager invitations;
  private final MessageSender sender;
  private final MessageReceiver receiver;
  private final SessionHealer healer;
  private final Outbox outbox;
  private final AlwaysOn alwaysOn;
  /** Held by a blocking {@link #receive} that opens streams of its own (the loop not running). */
  private final ReentrantLock receiving = new ReentrantLock();
  private boolean closed;

  private FerryClient(ClientContext ctx, CarrierConnector connector, Optional<DataDirectoryLock> ownLock) {
    this.ctx = ctx;
    this.connector = connector;
    this.ownLock = ownLock;
    this.forwarder = new HomeForwarder(ctx);
    this.invitations = new InvitationManager(ctx, forwarder);
    this.sender = new MessageSender(ctx, forwarder);
    this.healer = new SessionHealer(ctx, sender);
    this.receiver = new MessageReceiver(ctx, healer, forwarder, new MessageReceiver.Outcomes() {
      @Override
      public String outboxName() {
        return FerryClient.this.outbox.nextName();
      }

      @Override
      public void settled(SendLog.Settled settled) {
        String label = labelOf(settled.contactId());
        if (settled.failure().isPresent()) {
          FerryException why = settled.failure().get();
          FerryClient.this.alwaysOn.post(l -> l.onSendFailed(label, settled.messageId(), why));
        } else {
          FerryClient.this.alwaysOn.post(l -> l.onSendDelivered(label, settled.messageId()));
        }
      }

      @Override
      public void sendAgain() {
        FerryClient.this.outbox.kick();
      }
    });
    this.alwaysOn = new AlwaysOn(ctx, receiver, this::connected, this::arrival);
    // The forwarder mailbox is made with the first send to another server: subscribe it then.
    forwarder.onMailboxCreated(alwaysOn::contactsChanged);
    this.outbox = new Outbox(ctx, sender, new Outbox.Events() {
      @Override
      public void accepted(String contactId, String messageId) {
        String label = labelOf(contactId);
        alwaysOn.post(l -> l.onSendAccepted(label, messageId));
      }

      @Override
      public void delivered(String contactId, String messageId) {
        String label = labelOf(contactId);
        alwaysOn.post(l -> l.onSendDelivered(label, messageId));
      }

      @Override
      public void failed(String contactId, String messageId, FerryException why) {
        String label = labelOf(contactId);
        alwaysOn.post(l -> l.onSendFailed(label, messageId, why));
      }
    });
  }

  /** The background loop is connected: what waits to go out goes now. */
  private void connected() {
    sendPendingHandshakes();
    outbox.kick();
  }

  /** The background loop kept a delivery: queued messages held for a new session may go now. */
  private void arrival() {
    outbox.retryNow();
  }

  /** The longest the background loop waits before it tries to reconnect: 60 s. */
  public static final Duration MAX_RECONNECT_DELAY = Duration.ofSeconds(60);

  /**
   * Registers a listener for messages and events (see {@link FerryListener}), called on the
   * client's own event thread. Messages waiting in the local inbox are handed to it at once.
   * Without {@link #start}, it gets messages only from sends' and other calls' side effects;
   * with it, everything as it arrives.
   */
  public void addListener(FerryListener listener) {
    alwaysOn.addListener(listener, null);
  }

  /**
   * As {@link #addListener(FerryListener)}, with calls made on {@code executor} (the app's UI
   * thread, say). Calls still come one at a time: the client waits for each to return.
   */
  public void addListener(FerryListener listener, Executor executor) {
    alwaysOn.addListener(listener, Objects.requireNonNull(executor, "executor"));
  }

  /** Stops calling {@code listener}; a call under way finishes. */
  public void removeListener(FerryListener listener) {
    alwaysOn.removeListener(listener);
  }

  /**
   * Starts the background loop: it keeps receive streams to the home server open (through
   * whichever carrier the dialer finds, reconnecting after failures with exponential back-off
   * and jitter, at most {@link #MAX_RECONNECT_DELAY} apart), keeps every message durably in the
   * local inbox and acknowledges it to the server only then, and hands messages to the
   * listeners. While no listener is registered, messages wait in the local inbox for one or for
   * {@link #receive}. Also sends what waits in the outbox. Does nothing if the loop runs.
   *
   * @throws FerryException NOT_INITIALIZED, CLOSED
   */
  public void start() {
    requireOpen();
    requireInitialized();
    alwaysOn.start();
    outbox.kick();
  }

  /** Ends the background loop and closes its streams; waits for it. Does nothing if it does not run. */
  public void stop() {
    alwaysOn.stop();
  }

  /** Whether the background loop runs ({@link #start} was called, {@link #stop} was not). */
  public boolean isRunning() {
    return alwaysOn.isRunning();
  }

  /** Whether the background loop is connected now, as last reported to the listeners. */
  public Connectivity connectivity() {
    return alwaysOn.connectivity();
  }

  /** How many messages wait in the outbox for their contact's server to take them. */
  public int pendingSends() {
    return outbox.size();
  }

  /**
   * Sends that are not settled yet, and the last {@value SendLog#MAX_FAILED} that failed, for
   * showing to the user ({@code ferry client sends}). Makes no connection.
   *
   * <ul>
   *   <li>{@link SendStatus.State#QUEUED}: in the local outbox; our home server does not hold
   *       it yet (offline, or held back: see {@link FerryException.Reason}s of the outbox).
   *   <li>{@link SendStatus.State#FORWARDING}: our home server holds it durably for the
   *       contact's server (another one), which has not accepted it yet: the home server keeps
   *       trying until its time to live runs out.
   *   <li>{@link SendStatus.State#FAILED}: it will not be delivered; {@link SendStatus#failure}
   *       says why (EXPIRED, REJECTED, PEER_REFUSED, UNKNOWN_CONTACT...) and which hop failed.
   * </ul>
   *
   * Delivered sends are not listed: {@link FerryListener#onSendDelivered} told of them.
   *
   * @return queued ones in outbox order, then forwarded ones by the time the home server took
   *     them, then failed ones oldest first
   */
  public List<SendStatus> sends() {
    List<SendStatus> all = new ArrayList<>();
    java.util.Set<String> queued = new java.util.HashSet<>();
    for (org.ferry.proto.local.v1.OutboxItem item : outbox.items()) {
      String id = HexFormat.of().formatHex(item.getEnvelopeId().toByteArray());
      queued.add(id);
      all.add(new SendStatus(id, labelOf(item.getContactId()), serverOf(item.getTo().getServer()),
          SendStatus.State.QUEUED, Instant.ofEpochMilli(item.getQueuedAt()), Optional.empty(), Optional.empty()));
    }
    for (SendLog.Forwarded f : SendLog.held(ctx.store())) {
      if (!queued.contains(f.messageId())) {
        all.add(new SendStatus(f.messageId(), labelOf(f.contactId()), serverOf(f.destination()),
            SendStatus.State.FORWARDING, Instant.ofEpochMilli(f.queuedAt()),
            Optional.of(Instant.ofEpochMilli(f.acceptedAt())), Optional.empty()));
      }
    }
    for (SendLog.Failed f : SendLog.failures(ctx.store())) {
      all.add(new SendStatus(f.messageId(), labelOf(f.contactId()), serverOf(f.destination()),
          SendStatus.State.FAILED, Instant.ofEpochMilli(f.queuedAt()), Optional.empty(),
          Optional.of(new SendStatus.Failure(f.reason(), f.message(), Instant.ofEpochMilli(f.failedAt())))));
    }
    return all;
  }

  private static String serverOf(String address) {
    try {
      return ServerAddress.parse(address).hostPort();
    } catch (IllegalArgumentException e) {
      return "?";
    }
  }

  /**
   * Sends a text message without waiting: it is encrypted and kept in the local, encrypted
   * outbox before this returns, and sent from there as soon as (and as often as) it takes for
   * our home server to hold it, across network outages and restarts of the app (for a contact
   * on another server, the home server then forwards it). Messages to one contact arrive in the
   * order they were sent; the recipient keeps each once. The listeners hear
   * {@link FerryListener#onSendAccepted}, then {@link FerryListener#onSendDelivered} or
   * {@link FerryListener#onSendFailed}; {@link #sends} lists what is not settled yet.
   *
   * @return completes with the message id (hex) once our home server holds the message
   *     (which, offline, may be much later); completes exceptionally with a
   *     {@link FerryException} if it will never be delivered (REJECTED, UNKNOWN_CONTACT when
   *     the contact was removed first) or the client was closed first (CLOSED: the message
   *     stays queued)
   * @throws FerryException at once, with nothing queued: UNKNOWN_CONTACT, CONTACT_NOT_READY
   *     (they have not accepted the invitation yet), IDENTITY_CHANGED, TOO_LARGE, INVALID_TEXT (a lone
   *     UTF-16 surrogate),
   *     NOT_INITIALIZED, CLOSED
   */
  public CompletableFuture<String> sendAsync(String label, String text) {
    requireOpen();
    ContactRecord contact = recipient(label, text);
    if (contact.getState() == ContactRecord.State.INVITED) {
      throw new FerryException(FerryException.Reason.CONTACT_NOT_READY,
          "'" + label + "' has not accepted your invitation yet");
    }
    return outbox.submit(contact.getId(), textContent(text));
  }

  private Content textContent(String text) {
    return Content.newBuilder()
        .setSentAt(ctx.clock().millis())
        .setText(Text.newBuilder().setBody(text))
        .build();
  }

  private String labelOf(String contactId) {
    try (LocalStore.Txn txn = ctx.store().begin()) {
      return ContactBook.byId(txn, contactId).map(ContactRecord::getLabel).orElse("(removed contact)");
    }
  }

  private synchronized void requireOpen() {
    if (closed) {
      throw new FerryException(FerryException.Reason.CLOSED, "the client is closed");
    }
  }

  public static Builder builder() {
    return new Builder();
  }

  /** Whether {@link #initialize} has been called on this data directory. */
  public boolean isInitialized() {
    try (LocalStore.Txn txn = ctx.store().begin()) {
      return LocalIdentityStore.load(txn).isPresent();
    }
  }

  /**
   * Creates this user's identity (libsignal identity key pair and registration id) and sets the
   * home server, after checking that the server answers with the pinned key.
   *
   * @throws FerryException ALREADY_INITIALIZED, UNREACHABLE, SERVER_KEY_MISMATCH
   */
  public void initialize(ServerAddress homeServer) {
    initialize(homeServer, "");
  }

  /**
   * As {@link #initialize(ServerAddress)}, for a home server whose operator requires a creation
   * token to make mailboxes. The token is kept (encrypted) in the local store and given with
   * every mailbox this client makes; a wrong one shows up as CREATION_TOKEN_REQUIRED then.
   *
   * @param creationToken up to 256 characters; empty for a server that needs none
   */
  public void initialize(ServerAddress homeServer, String creationToken) {
    initialize(homeServer, creationToken, List.of());
  }

  /**
   * As {@link #initialize(ServerAddress, String)}, with bridge lines for the home server: ways to
   * reach it when its own address is blocked. The client tries them by itself (see
   * {@link #addBridge}); they are checked here like the address itself.
   *
   * @throws FerryException INVALID_BRIDGE if a line is malformed, and as the other initialize;
   *     parameters and carriers this version does not know are left out with a logged note, as
   *     in {@link #addBridge}
   */
  public void initialize(ServerAddress homeServer, String creationToken, List<String> bridges) {
    Objects.requireNonNull(homeServer, "homeServer");
    GivenBridges given = GivenBridges.read(bridges);
    given.notes().forEach(note -> log.info("bridge line: {}", note));
    if (creationToken.length() > 256) {
      throw new IllegalArgumentException("creation token is longer than 256 characters");
    }
    if (isInitialized()) {
      throw new FerryException(FerryException.Reason.ALREADY_INITIALIZED,
          "already initialised with server " + ctx.homeServer().hostPort());
    }
    ctx.routes().addBridges(homeServer, given.lines(), false);
    checkServing(homeServer);
    IdentityKeyPair identity = IdentityKeyPair.generate();
    int registrationId = 1 + ctx.random().nextInt(16380);
    try (LocalStore.Txn txn = ctx.store().begin()) {
      LocalIdentityStore.put(txn, LocalIdentity.newBuilder()
          .setIdentityKeyPair(ByteString.copyFrom(identity.serialize()))
          .setRegistrationId(registrationId)
          .setHomeServer(homeServer.toString())
          .setNextPreKeyId(1)
          .setCreationToken(creationToken)
          .build());
      txn.commit();
    }
    ctx.routes().persist(homeServer);
  }

  /**
   * Adds a bridge line for the home server: another way to reach it (WebSocket, HTTP polling,
   * obfs4) when its address is blocked, as {@code ferry relay} or {@code ferry server --carriers}
   * print them. Every connection tries the server's address and all its lines by itself,
   * staggered, and keeps to what works on the current network. Invitations made from now on
   * carry the lines, so invitees can reach this server too.
   *
   * <p>A line from another version is read as far as this one can: a parameter it does not
   * know is left out, and a line for a carrier it does not know is not added; each with a note.
   * Fields may be separated by spaces, tabs or no-break spaces.
   *
   * @return notes on what was left out (naming no secret of the line), empty if it was taken whole
   * @throws FerryException INVALID_BRIDGE if the line is malformed or a known parameter has a
   *     bad value (the message names it), NOT_INITIALIZED
   */
  public List<String> addBridge(String line) {
    requireInitialized();
    GivenBridges given = GivenBridges.read(List.of(line));
    ctx.routes().addBridges(ctx.homeServer(), given.lines(), true);
    return given.notes();
  }

  /** The home server's bridge lines, in the order they were added. */
  public List<String> bridges() {
    requireInitialized();
    return ctx.routes().bridges(ctx.homeServer()).stream().map(BridgeLine::toString).toList();
  }

  /**
   * How the home server is reached: the carrier in use, and each line's successes, failures and
   * back-off. Makes no connection; call after some traffic (or {@link #checkConnection}) to see
   * the carrier in use. One entry: the client connects to no other server (contacts' servers
   * are reached through the home server).
   */
  public List<NetworkStatus> networkStatus() {
    requireInitialized();
    java.util.Set<ServerAddress> servers = new java.util.LinkedHashSet<>();
    servers.add(ctx.homeServer());
    return servers.stream().map(server -> new NetworkStatus(
        server.hostPort(),
        ctx.routes().inUse(server).map(BridgeLine::toString),
        ctx.routes().health(server).stream().map(h -> new NetworkStatus.Line(
            h.line().toString(), h.successes(), h.failures(), h.lastSuccess(), h.lastFailure(),
            h.backingOffUntil())).toList())).toList();
  }

  /**
   * Connects to the home server (over whichever carrier gets through) and checks that it serves.
   *
   * @throws FerryException NOT_INITIALIZED, UNREACHABLE, SERVER_KEY_MISMATCH
   */
  public void checkConnection() {
    requireInitialized();
    checkServing(ctx.homeServer());
  }

  /** Lines given by the app or user, read like any version's; malformed ones are refused. */
  private record GivenBridges(List<BridgeLine> lines, List<String> notes) {
    static GivenBridges read(List<String> texts) {
      List<BridgeLine> lines = new ArrayList<>();
      List<String> notes = new ArrayList<>();
      for (String text : texts) {
        BridgeLine.Reading r;
        try {
          r = BridgeLine.read(text);
        } catch (IllegalArgumentException e) {
          throw new FerryException(FerryException.Reason.INVALID_BRIDGE, e.getMessage(), e);
        }
        r.line().ifPresent(lines::add);
        notes.addAll(r.notes());
      }
      return new GivenBridges(List.copyOf(lines), List.copyOf(notes));
    }
  }

  /** The home server set by {@link #initialize}, if any. */
  public Optional<ServerAddress> homeServer() {
    return isInitialized() ? Optional.of(ctx.homeServer()) : Optional.empty();
  }

  /** {@link #createInvitation(String, Duration)} valid for {@link #DEFAULT_INVITATION_VALIDITY}. */
  public Invitation createInvitation(String label) {
    return createInvitation(label, DEFAULT_INVITATION_VALIDITY);
  }

  /**
   * Makes a one-time invitation for the person to be known here as {@code label}. Whoever
   * accepts it first becomes that contact; its bundle is erased from the server then.
   *
   * @param label 1 to 64 letters of any script (with their combining marks), digits, '.', '_'
   *     or '-', not beginning with '-'; kept and compared in Unicode NFC; not already used
   * @param validity how long it can be accepted, at most {@link #MAX_INVITATION_VALIDITY}
   * @throws FerryException INVALID_LABEL, NOT_INITIALIZED, UNREACHABLE, SERVER_KEY_MISMATCH
   */
  public Invitation createInvitation(String label, Duration validity) {
    if (validity.isNegative() || validity.isZero() || validity.compareTo(MAX_INVITATION_VALIDITY) > 0) {
      throw new IllegalArgumentException("validity must be positive and at most 30 days: " + validity);
    }
    requireInitialized();
    Invitation invitation = invitations.create(label, validity);
    alwaysOn.contactsChanged();
    return invitation;
  }

  /**
   * Accepts an invitation: fetches the inviter's bundle (single use), starts a PQXDH session
   * and sends our contact card, so that the inviter can answer.
   *
   * <p>A network failure never uses the invitation up: call again with the same URI (within 10
   * minutes of a lost answer from the inviter's server; at any time if the failure was on the
   * way there) and the acceptance picks up where it stopped. If the network fails after the
   * invitation was taken, the contact is still added and the card is sent again before the next
   * {@link #send}; the exception says so.
   *
   * <p>The URI may be given as people paste it (see {@code docs/sdk.md}): brackets, wrapping and
   * invisible characters are forgiven.
   *
   * @throws FerryException INVALID_INVITATION, INVITATION_EXPIRED, INVITATION_USED (someone
   *     else took it: it may have been intercepted), ALREADY_ACCEPTED (by this client; the
   *     message names the contact), INVALID_LABEL, NOT_INITIALIZED, UNREACHABLE,
   *     SERVER_KEY_MISMATCH
   */
  public Contact acceptInvitation(String uri, String label) {
    Objects.requireNonNull(uri, "uri");
    requireInitialized();
    String contactId;
    try {
      contactId = invitations.accept(uri, label);
    } catch (FerryException e) {
      if (e.reason() == FerryException.Reason.ALREADY_ACCEPTED) {
        // An earlier try may have ended before its handshake left: send it now, so that the
        // inviter learns of the acceptance without waiting for our first message.
        sendPendingHandshakes();
      }
      throw e;
    }
    alwaysOn.contactsChanged();
    try {
      sender.sendContactCard(contactId);
    } catch (FerryException e) {
      throw new FerryException(e.reason(),
          "contact '" + label + "' added, but the handshake did not reach their server ("
              + e.getMessage() + "); it is sent again with your next message", e);
    }
    return contact(label).orElseThrow();
  }

  /**
   * Sends a text message. Returns once our home server holds it durably: in the contact's
   * mailbox if it is on the home server, else queued there for the contact's server, whose
   * answer comes later as {@link FerryListener#onSendDelivered} or
   * {@link FerryListener#onSendFailed} (to listeners, with the returned id). To a contact we
   * invited and have not heard from yet, it first looks for their acceptance on our server
   * (waiting up to 1 s after subscribing; any other messages found stay for {@link #receive}).
   *
   * @return the message id (hex), as the recipient will see it
   * @throws FerryException UNKNOWN_CONTACT, CONTACT_NOT_READY (they have not accepted yet),
   *     IDENTITY_CHANGED (a new identity key came in their name: see {@link #verify}), INVALID_TEXT (a
   *     lone UTF-16 surrogate), TOO_LARGE (more than {@link #MAX_TEXT_BYTES} of UTF-8; the message
   *     says how many characters of this text fit), UNREACHABLE, SERVER_KEY_MISMATCH, REJECTED,
   *     ROUTING_KEY_UNVERIFIED, PEER_REFUSED, RATE_LIMITED; on any of these the message was not
   *     sent
   */
  public String send(String label, String text) {
    ContactRecord contact = recipient(label, text);
    if (contact.getState() == ContactRecord.State.INVITED) {
      // Their acceptance may be waiting on our server: pick it up (other messages stay in the
      // local inbox for the next receive). The background loop, if it runs, picks it up anyway.
      awaitAcceptance(contact.getId());
      try (LocalStore.Txn txn = ctx.store().begin()) {
        contact = ContactBook.require(txn, label);
      }
      if (contact.getState() == ContactRecord.State.INVITED) {
        throw new FerryException(FerryException.Reason.CONTACT_NOT_READY,
            "'" + label + "' has not accepted your invitation yet");
      }
    }
    if (contact.getHandshakePending()) {
      sender.sendContactCard(contact.getId());
    }
    // A session restart that is due goes first: the contact reads this message only on the
    // restarted session.
    String contactId = contact.getId();
    healer.flush(c -> c.getId().equals(contactId));
    byte[] id = sender.send(contact.getId(), textContent(text));
    return HexFormat.of().formatHex(id);
  }

  /** Gives an invited contact's acceptance {@link #ACCEPTANCE_WAIT} to arrive. */
  private void awaitAcceptance(String contactId) {
    if (!alwaysOn.isRunning()) {
      receiving.lock();
      try {
        receiver.collect(ACCEPTANCE_WAIT, contactId);
      } finally {
        receiving.unlock();
      }
      return;
    }
    long until = System.nanoTime() + ACCEPTANCE_WAIT.toNanos();
    long seen = alwaysOn.arrivals();
    try {
      while (System.nanoTime() < until && !isEstablished(contactId)) {
        alwaysOn.awaitArrival(seen, Duration.ofNanos(Math.max(0, until - System.nanoTime())));
        seen = alwaysOn.arrivals();
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  private boolean isEstablished(String contactId) {
    try (LocalStore.Txn txn = ctx.store().begin()) {
      return ContactBook.byId(txn, contactId)
          .map(c -> c.getState() == ContactRecord.State.ESTABLISHED).orElse(false);
    }
  }

  /** The contact {@code text} can go to, once the text is checked. */
  private ContactRecord recipient(String label, String text) {
    Objects.requireNonNull(text, "text");
    requireInitialized();
    checkLength(text);
    try (LocalStore.Txn txn = ctx.store().begin()) {
      return ContactBook.require(txn, label);
    }
  }

  /**
   * INVALID_TEXT unless the text is well-formed UTF-16 (every surrogate in a pair: what
   * crosses the wire is UTF-8, which has no room for a lone one, and would carry '?' instead);
   * TOO_LARGE, in characters of this text, unless it fits {@link #MAX_TEXT_BYTES}.
   */
  private static void checkLength(String text) {
    int bytes = 0;
    int fitting = 0;
    int characters = 0;
    for (int i = 0; i < text.length(); i += Character.charCount(text.codePointAt(i))) {
      int cp = text.codePointAt(i);
      if (Character.isSurrogate((char) cp) && cp <= 0xFFFF) {
        throw new FerryException(FerryException.Reason.INVALID_TEXT,
            "the text is not valid Unicode: character " + (characters + 1)
                + " is half of a surrogate pair (U+" + Integer.toHexString(cp).toUpperCase(java.util.Locale.ROOT)
                + ") without its other half; nothing was sent");
      }
      bytes += cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
      characters++;
      if (bytes <= MAX_TEXT_BYTES) {
        fitting++;
      }
    }
    if (bytes > MAX_TEXT_BYTES) {
      throw new FerryException(FerryException.Reason.TOO_LARGE,
          "message too long: it has " + characters + " characters, and at most " + fitting
              + " of them fit in one message (" + MAX_TEXT_BYTES + " bytes of UTF-8 text: 1 to 4 bytes a"
              + " character); split it");
    }
  }

  /**
   * Fetches and processes everything waiting on the home server (handshakes included), handing
   * each message to {@code listener}, until {@code idleTimeout} passes with nothing new.
   *
   * <p>A message that cannot be decrypted is reported to
   * {@link MessageListener#onDecryptionFailure}, naming the contact. If the two sides' sessions
   * are out of step (one side's data directory was restored from a copy, say), the session is
   * restarted by itself: a fresh key agreement under the identity keys already pinned, sent
   * in-band; both sides then get {@link MessageListener#onSessionRestarted}. See docs/sdk.md.
   *
   * @return how many messages were handed to the listener
   * @throws FerryException NOT_INITIALIZED, UNREACHABLE, SERVER_KEY_MISMATCH, REJECTED; what
   *     was processed before the failure is kept
   */
  public int receive(Duration idleTimeout, MessageListener listener) {
    return receive(idleTimeout, Integer.MAX_VALUE, listener);
  }

  /**
   * Like {@link #receive(Duration, MessageListener)}, but returns as soon as {@code maxMessages}
   * messages were handed to {@code listener}; the rest stay, in the local inbox or on the
   * server, for the next receive. For callers that can take only so many at a time (a script
   * that reads one message, a screen with room for ten).
   *
   * @param maxMessages at least 1
   * @return how many messages were handed to the listener, at most {@code maxMessages}
   * @throws IllegalArgumentException if {@code maxMessages} is below 1 or the timeout negative
   * @throws FerryException as {@link #receive(Duration, MessageListener)}
   */
  public int receive(Duration idleTimeout, int maxMessages, MessageListener listener) {
    Objects.requireNonNull(listener, "listener");
    if (idleTimeout.isNegative()) {
      throw new IllegalArgumentException("idle timeout must not be negative: " + idleTimeout);
    }
    if (maxMessages < 1) {
      throw new IllegalArgumentException("maxMessages must be at least 1: " + maxMessages);
    }
    requireInitialized();
    sendPendingHandshakes();
    if (!alwaysOn.isRunning()) {
      receiving.lock();
      try {
        return receiver.receive(idleTimeout, maxMessages, listener);
      } finally {
        receiving.unlock();
      }
    }
    // The background loop receives: take from the local inbox what it keeps.
    int handed = 0;
    try {
      while (true) {
        long seen = alwaysOn.arrivals();
        handed += receiver.handOverInbox(listener, maxMessages - handed);
        if (handed >= maxMessages || !alwaysOn.awaitArrival(seen, idleTimeout)) {
          return handed;
        }
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return handed;
    }
  }

  /**
   * Sends the contact cards of acceptances whose handshake has not left yet (a try that was cut
   * off); one that cannot go now is tried again next time.
   */
  private void sendPendingHandshakes() {
    List<ContactRecord> pending;
    try (LocalStore.Txn txn = ctx.store().begin()) {
      pending = ContactBook.all(txn).stream().filter(ContactRecord::getHandshakePending).toList();
    }
    for (ContactRecord c : pending) {
      try {
        sender.sendContactCard(c.getId());
      } catch (FerryException e) {
        // Tried again with the next receive, send or acceptance.
      }
    }
  }

  /**
   * Removes a contact: deletes our mailbox for them on our server (with whatever waits in it;
   * for a contact still invited, the invitation goes with it), then the contact and its session
   * here. Messages from them already received and not yet handed over are kept.
   *
   * @throws FerryException UNKNOWN_CONTACT, NOT_INITIALIZED, UNREACHABLE (then nothing was
   *     removed: try again)
   */
  public void removeContact(String label) {
    requireInitialized();
    ContactRecord contact;
    try (LocalStore.Txn txn = ctx.store().begin()) {
      contact = ContactBook.require(txn, label);
    }
    ctx.deleteMailbox(contact.getInbox());
    try (LocalStore.Txn txn = ctx.store().begin()) {
      ContactBook.delete(txn, contact);
      ctx.protocol(txn).forget(contact.getId());
      txn.commit();
    }
    alwaysOn.contactsChanged();
  }

  /**
   * Gives a contact another label. Only this client's name for them changes: the session, the
   * safety number and the mailboxes stay.
   *
   * @throws FerryException UNKNOWN_CONTACT, INVALID_LABEL (see {@link #createInvitation(String,
   *     Duration)} for what a label may be), NOT_INITIALIZED
   */
  public Contact renameContact(String label, String newLabel) {
    requireInitialized();
    try (LocalStore.Txn txn = ctx.store().begin()) {
      ContactRecord contact = ContactBook.require(txn, label);
      String normal = ContactBook.normalize(newLabel);
      if (!normal.equals(contact.getLabel())) {
        normal = ContactBook.checkNewLabel(txn, newLabel);
      }
      ContactBook.put(txn, contact.toBuilder().setLabel(normal).build());
      txn.commit();
    }
    return contact(newLabel).orElseThrow();
  }

  /** All contacts, in the order they were made. */
  public List<Contact> contacts() {
    try (LocalStore.Txn txn = ctx.store().begin()) {
      return ContactBook.all(txn).stream()
          .sorted(java.util.Comparator.comparingLong(ContactRecord::getCreatedAt))
          .map(contactView(txn))
          .toList();
    }
  }

  /** The contact with this label, if any. */
  public Optional<Contact> contact(String label) {
    try (LocalStore.Txn txn = ctx.store().begin()) {
      return ContactBook.byLabel(txn, label).map(contactView(txn));
    }
  }

  /** Turns records into what the app sees, reading our identity once for all of them. */
  private Function<ContactRecord, Contact> contactView(LocalStore.Txn txn) {
    ProtocolStore protocol = ctx.protocol(txn);
    IdentityKey local = protocol.getIdentityKeyPair().getPublicKey();
    return c -> toContact(c, protocol, local);
  }

  private Contact toContact(
      ContactRecord c, ProtocolStore protocol, IdentityKey local) {
    Contact.State state = switch (c.getState()) {
      case ESTABLISHED -> Contact.State.ESTABLISHED;
      default -> ctx.clock().instant().getEpochSecond() >= c.getInvitationExpiresAt()
          ? Contact.State.INVITATION_EXPIRED
          : Contact.State.INVITED;
    };
    Optional<String> safety = Optional.ofNullable(protocol.getIdentity(ClientContext.address(c)))
        .map(remote -> safetyNumber(local, remote));
    Optional<Instant> last = c.getLastReceivedAt() == 0
        ? Optional.empty()
        : Optional.of(Instant.ofEpochSecond(c.getLastReceivedAt()));
    Optional<String> pending = pendingIdentity(c).map(remote -> safetyNumber(local, remote));
    return new Contact(c.getLabel(), state, safety, last, pending, c.getVerified());
  }

  /** The new identity key that came in the contact's name and waits for verification, if any. */
  private static Optional<IdentityKey> pendingIdentity(ContactRecord c) {
    if (c.getPendingIdentityKey().isEmpty()) {
      return Optional.empty();
    }
    try {
      return Optional.of(new IdentityKey(c.getPendingIdentityKey().toByteArray()));
    } catch (org.signal.libsignal.protocol.InvalidKeyException e) {
      throw new FerryException(FerryException.Reason.STORAGE, "a stored identity key is unreadable", e);
    }
  }

  /**
   * Records that the user compared a contact's safety number with the contact's own (in person
   * or over a trusted call) and found them equal. Safety numbers are Signal's: libsignal's
   * {@code NumericFingerprintGenerator}, version 2, 5200 iterations, over both identity keys
   * (see {@link Contact#safetyNumber}); 60 digits, the same on both sides.
   *
   * <ul>
   *   <li>If a new identity key came in the contact's name ({@link Contact#pendingSafetyNumber},
   *       {@link DecryptionFailure.Kind#IDENTITY_CHANGED}) and {@code safetyNumber} is the one
   *       with that key: the new key is pinned in place of the old, the sessions made under the
   *       old key are dropped, the contact is marked verified, and sending is no longer refused.
   *       A fresh session is started under the new key without a new invitation: a session
   *       restart request (fresh prekeys signed by our identity key, see
   *       {@link MessageListener#onSessionRestarted}) goes to the contact now, or with the next
   *       {@link #receive} or {@link #send} if their server cannot be reached now. Until their
   *       answer has arrived (with a {@link #receive}; both sides then get
   *       {@code onSessionRestarted}), sends fail with CONTACT_NOT_READY.
   *   <li>If no key is pending and {@code safetyNumber} is the current one: the contact is
   *       marked verified ({@link Contact#verified}).
   *   <li>Otherwise (also the old number while a new key is pending): SAFETY_NUMBER_MISMATCH,
   *       and nothing changes.
   * </ul>
   *
   * @param safetyNumber the 60 digits as the user typed or pasted them; whitespace (spaces,
   *     line breaks) is ignored, and decimal digits of any script are read as such
   * @return the contact as it is now
   * @throws FerryException INVALID_SAFETY_NUMBER (not 60 digits), UNKNOWN_CONTACT,
   *     CONTACT_NOT_READY (no safety number yet: they have not accepted the invitation),
   *     SAFETY_NUMBER_MISMATCH, NOT_INITIALIZED
   */
  public Contact verify(String label, String safetyNumber) {
    Objects.requireNonNull(safetyNumber, "safetyNumber");
    requireInitialized();
    String given = SafetyNumbers.normalize(safetyNumber).orElseThrow(() -> new FerryException(
        FerryException.Reason.INVALID_SAFETY_NUMBER,
        "a safety number is " + SafetyNumbers.DIGITS + " digits (spaces may separate them); check what was "
            + "typed or pasted; nothing was changed"));
    String contactId;
    boolean restart = false;
    try (LocalStore.Txn txn = ctx.store().begin()) {
      ContactRecord c = ContactBook.require(txn, label);
      contactId = c.getId();
      ProtocolStore protocol = ctx.protocol(txn);
      IdentityKey local = protocol.getIdentityKeyPair().getPublicKey();
      IdentityKey pinned = protocol.getIdentity(ClientContext.address(c));
      if (pinned == null) {
        throw new FerryException(FerryException.Reason.CONTACT_NOT_READY,
            "'" + c.getLabel() + "' has no safety number yet: they have not accepted your invitation");
      }
      Optional<IdentityKey> pending = pendingIdentity(c);
      if (pending.isPresent() && SafetyNumbers.matches(given, local, pending.get())) {
        healer.restartUnderNewIdentity(txn, c, pending.get());
        outbox.resealAll(txn, c.getId());
        restart = true;
      } else if (pending.isPresent() && SafetyNumbers.matches(given, local, pinned)) {
        throw new FerryException(FerryException.Reason.SAFETY_NUMBER_MISMATCH,
            "that is the safety number of the identity key '" + c.getLabel() + "' had before; a new key came "
                + "in their name since: compare the new safety number with theirs; nothing was changed");
      } else if (pending.isEmpty() && SafetyNumbers.matches(given, local, pinned)) {
        ContactBook.put(txn, c.toBuilder().setVerified(true).build());
      } else {
        throw new FerryException(FerryException.Reason.SAFETY_NUMBER_MISMATCH,
            "that is not the safety number of '" + c.getLabel() + "': compare again, digit by digit; if it "
                + "still differs, someone may be between you; nothing was changed");
      }
      txn.commit();
    }
    if (restart) {
      healer.flush(c -> c.getId().equals(contactId));
      outbox.kick();
    }
    return contact(label).orElseThrow();
  }

  /**
   * The safety number of two identity keys: 60 digits in groups of five, the same on both
   * sides. Compare it in person (or over a trusted call) to rule out a man in the middle.
   */
  static String safetyNumber(IdentityKey local, IdentityKey remote) {
    return SafetyNumbers.of(local, remote);
  }

  private void requireInitialized() {
    if (!isInitialized()) {
      throw new FerryException(FerryException.Reason.NOT_INITIALIZED,
          "not initialised: run init with a server address first");
    }
  }

  private void checkServing(ServerAddress server) {
    try {
      HealthCheckResponse r = HealthGrpc.newBlockingStub(ctx.net().channel(server))
          .withDeadlineAfter(ctx.net().callTimeout().toMillis(), TimeUnit.MILLISECONDS)
          .check(HealthCheckRequest.getDefaultInstance());
      if (r.getStatus() != HealthCheckResponse.ServingStatus.SERVING) {
        throw new FerryException(FerryException.Reason.UNREACHABLE,
            "server " + server.hostPort() + " is not serving (" + r.getStatus() + ")");
      }
    } catch (StatusRuntimeException e) {
      throw ctx.net().failure(server, e);
    }
  }

  /**
   * Stops the background loop and the outbox (queued messages stay, for the next run), closes
   * connections and the local store, and lets go of the data directory if it took it. Called
   * from a listener, it returns at once and finishes as soon as the listener has returned (the
   * event it was handling counts as handled). Closing twice does nothing.
   */
  @Override
  public void close() {
    synchronized (this) {
      if (closed) {
        return;
      }
      closed = true;
    }
    if (alwaysOn.onDispatchThread()) {
      // Called from a listener: the rest waits until it has returned, so that what it was
      // given is forgotten (not handed over again at the next start) before the store closes.
      alwaysOn.closeAfterThisEvent(this::closeResources);
      return;
    }
    alwaysOn.close();
    closeResources();
  }

  private void closeResources() {
    outbox.close();
    ctx.net().close();
    ctx.net().dialer().close();
    connector.close();
    ctx.routes().close();
    ctx.store().close();
    ownLock.ifPresent(DataDirectoryLock::close);
  }

  /** Configures a client; {@link #build()} opens (or creates) its local store. */
  public static final class Builder {
    private Path dataDirectory;
    private DataDirectoryLock heldLock;
    private byte[] storageKey;
    private Clock clock = Clock.systemUTC();
    private Duration callTimeout = Duration.ofSeconds(20);
    private Duration dialStagger = Duration.ofMillis(250);
    private Optional<ProxySettings> proxy = Optional.empty();
    private String obfs4proxy = "obfs4proxy";
    private Optional<java.net.InetAddress> localAddress = Optional.empty();
    private java.util.function.Function<ServerAddress, io.grpc.ManagedChannel> channels;

    private Builder() {}

    /** Tests only: opens the channel to a server (an in-process one) in place of TLS over carriers. */
    Builder channels(java.util.function.Function<ServerAddress, io.grpc.ManagedChannel> opener) {
      this.channels = opener;
      return this;
    }

    /**
     * The local address that outgoing connections leave from: every carrier's TCP connection
     * (direct, WebSocket, HTTP polling, and the connection to a proxy or to obfs4proxy's local
     * SOCKS port) is bound to it, on a port the system picks. For hosts with several addresses
     * (say, to leave through one network), and for tests that give each client its own loopback
     * address ({@code 127.0.0.2}...). The address must be one of this host's, of the same family
     * (IPv4 or IPv6) as the servers, bridges and proxy it connects to; otherwise connections fail
     * (UNREACHABLE, naming the line). obfs4proxy's own connection onwards to the bridge is made
     * by obfs4proxy and is not bound. Default: none, the system chooses per connection.
     */
    public Builder localAddress(java.net.InetAddress address) {
      this.localAddress = Optional.of(Objects.requireNonNull(address, "address"));
      return this;
    }

    /**
     * A proxy that every connection goes through: {@code socks5://HOST:PORT} (Tor's SOCKS port,
     * say, or with {@code USER:PASS@}) or {@code http://HOST:PORT}. Host names are resolved by
     * the proxy. Default: none.
     *
     * @throws IllegalArgumentException if the URI is not one of those forms
     */
    public Builder proxy(String uri) {
      this.proxy = Optional.of(ProxySettings.parse(uri));
      return this;
    }

    /** The obfs4proxy executable used for obfs4 bridge lines; default {@code obfs4proxy}. */
    public Builder obfs4proxy(String executable) {
      this.obfs4proxy = Objects.requireNonNull(executable, "executable");
      return this;
    }

    /**
     * How long the dialer waits for one carrier before starting the next in parallel; default
     * 250 ms. A carrier that fails outright starts the next at once.
     */
    public Builder dialStagger(Duration stagger) {
      if (stagger.isNegative()) {
        throw new IllegalArgumentException("stagger must not be negative: " + stagger);
      }
      this.dialStagger = stagger;
      return this;
    }

    /**
     * Required (or {@link #dataDirectory(DataDirectoryLock)}): where the local store lives;
     * created owner-only if missing, and made owner-only (directories 0700, files 0600)
     * whatever the umask when the client opens and closes. {@link #build} takes the directory's lock (see
     * {@link DataDirectoryLock}) and the client holds it until {@link FerryClient#close}: one
     * process at a time may use a data directory.
     */
    public Builder dataDirectory(Path dataDirectory) {
      this.dataDirectory = Objects.requireNonNull(dataDirectory, "dataDirectory");
      this.heldLock = null;
      return this;
    }

    /**
     * Instead of {@link #dataDirectory(Path)}: a data directory whose lock the caller holds
     * already (say, after waiting for it, or to make files in it before the client opens). The
     * caller keeps the lock and releases it after closing the client.
     */
    public Builder dataDirectory(DataDirectoryLock held) {
      this.heldLock = Objects.requireNonNull(held, "held");
      this.dataDirectory = held.directory();
      return this;
    }

    /**
     * Required: the 32-byte key that encrypts the local store. Keep it in the platform's
     * keystore, or derive it from a passphrase; the same key must be given every time.
     */
    public Builder storageKey(byte[] storageKey) {
      if (storageKey == null || storageKey.length != 32) {
        throw new IllegalArgumentException("storage key must be 32 bytes");
      }
      this.storageKey = storageKey.clone();
      return this;
    }

    /** Time source for expiry and timestamps; default the system UTC clock. */
    public Builder clock(Clock clock) {
      this.clock = Objects.requireNonNull(clock, "clock");
      return this;
    }

    /** Deadline for each request to a server; default 20 seconds. */
    public Builder callTimeout(Duration callTimeout) {
      if (callTimeout.isNegative() || callTimeout.isZero()) {
        throw new IllegalArgumentException("call timeout must be positive: " + callTimeout);
      }
      this.callTimeout = callTimeout;
      return this;
    }

    /**
     * Opens the client.
     *
     * @throws FerryException STORAGE if the store cannot be opened (wrong key), or the data
     *     directory is in use by another process (the message names it)
     */
    public FerryClient build() {
      if (dataDirectory == null || storageKey == null) {
        throw new IllegalStateException("dataDirectory and storageKey are required");
      }
      Optional<DataDirectoryLock> ownLock = Optional.empty();
      if (heldLock == null) {
        try {
          ownLock = Optional.of(DataDirectoryLock.acquire(dataDirectory));
        } catch (IOException e) {
          throw new FerryException(FerryException.Reason.STORAGE,
              e instanceof DataDirectoryInUseException ? e.getMessage()
                  : "cannot open data directory " + dataDirectory + ": " + e.getMessage(), e);
        }
      }
      try {
        return open(ownLock);
      } catch (RuntimeException e) {
        ownLock.ifPresent(DataDirectoryLock::close);
        throw e;
      }
    }

    private FerryClient open(Optional<DataDirectoryLock> ownLock) {
      try {
        // Owner-only whatever the umask it was made under (an older version, a mkdir by hand).
        org.ferry.datadir.PrivateFiles.restrictTree(dataDirectory);
      } catch (IOException e) {
        throw new FerryException(FerryException.Reason.STORAGE,
            "cannot make data directory " + dataDirectory + " owner-only: " + e.getMessage(), e);
      }
      LocalStore store = LocalStore.open(dataDirectory.resolve("store"), storageKey);
      SecureRandom random = new SecureRandom();
      CarrierConnector connector =
          new CarrierConnector(proxy, obfs4proxy, dataDirectory.resolve("obfs4"), callTimeout, localAddress);
      Dialer dialer = new Dialer(connector, new RouteBook(store, clock, random), dialStagger, callTimeout);
      return new FerryClient(
          new ClientContext(store, new ServerConnections(callTimeout, dialer, channels), clock, random), connector, ownLock);
    }
  }
}
