package org.ferry.sdk.internal.messaging;

import com.google.protobuf.ByteString;
import com.google.protobuf.InvalidProtocolBufferException;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.StreamObserver;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;
import org.ferry.proto.BridgeLine;
import org.ferry.proto.ServerAddress;
import org.ferry.proto.local.v1.ContactRecord;
import org.ferry.proto.local.v1.InboxMessage;
import org.ferry.proto.local.v1.OwnedMailbox;
import org.ferry.proto.v1.Ack;
import org.ferry.proto.v1.Content;
import org.ferry.proto.v1.Delivery;
import org.ferry.proto.v1.MailboxAddress;
import org.ferry.proto.v1.MailboxesGrpc;
import org.ferry.proto.v1.ReceiveRequest;
import org.ferry.proto.v1.ReceiveResponse;
import org.ferry.proto.v1.Subscribe;
import org.ferry.sdk.DecryptionFailure;
import org.ferry.sdk.FerryException;
import org.ferry.sdk.MessageListener;
import org.ferry.sdk.ReceivedMessage;
import org.ferry.sdk.internal.ClientContext;
import org.ferry.sdk.internal.invite.InvitationCodec;
import org.ferry.sdk.internal.contacts.ContactBook;
import org.ferry.sdk.internal.crypto.EnvelopeSealer;
import org.ferry.sdk.internal.crypto.Kdf;
import org.ferry.sdk.internal.dial.Dialer;
import org.ferry.sdk.internal.federation.HomeForwarder;
import org.ferry.proto.OwnerKeys;
import org.ferry.sdk.internal.net.ServerConnections;
import org.ferry.sdk.internal.signal.SafetyNumbers;
import org.ferry.sdk.internal.store.LocalStore;
import org.signal.libsignal.protocol.DuplicateMessageException;
import org.signal.libsignal.protocol.IdentityKey;
import org.signal.libsignal.protocol.InvalidKeyException;
import org.signal.libsignal.protocol.InvalidKeyIdException;
import org.signal.libsignal.protocol.InvalidMessageException;
import org.signal.libsignal.protocol.InvalidVersionException;
import org.signal.libsignal.protocol.LegacyMessageException;
import org.signal.libsignal.protocol.NoSessionException;
import org.signal.libsignal.protocol.SessionCipher;
import org.signal.libsignal.protocol.UntrustedIdentityException;
import org.signal.libsignal.protocol.ecc.ECPrivateKey;
import org.signal.libsignal.protocol.ecc.ECPublicKey;
import org.signal.libsignal.protocol.message.CiphertextMessage;
import org.signal.libsignal.protocol.message.PreKeySignalMessage;
import org.signal.libsignal.protocol.message.SignalMessage;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Fetches what waits in our mailboxes and processes it.
 *
 * <p>Each delivery is handled in one local transaction: the envelope id (for de-duplication),
 * the session's ratchet step, contact changes and the decrypted message in the local inbox are
 * committed together. Only then is the delivery acknowledged, so the server deletes nothing we
 * have not kept; and only then is the message handed to the app, from the local inbox, which
 * forgets it once the app's listener returns.
 *
 * <p>Envelopes that cannot be opened or decrypted are acknowledged, so they cannot block the
 * mailbox, but never dropped in silence: one in a contact's mailbox leaves a notice in the
 * local inbox that the app gets as {@link MessageListener#onDecryptionFailure}, and one that
 * shows the sessions out of step starts a session restart ({@link SessionHealer}). Only
 * redeliveries and replays (an envelope id or body seen before) are dropped without a word.
 */
public final class MessageReceiver {
  private static final Logger log = LoggerFactory.getLogger(MessageReceiver.class);
  private static final String SEEN = "seen/";
  /**
   * How long an envelope id is remembered. Servers drop envelopes after at most 21 days, so an
   * older id cannot come back from an honest server; a replay from a dishonest one still fails
   * in libsignal, whose message keys are used once.
   */
  static final Duration SEEN_RETENTION = Duration.ofDays(30);
  private static final String INBOX = "inbox/";

  private final ClientContext ctx;
  private final SessionHealer healer;
  private final HomeForwarder forwarder;
  private final Outcomes outcomes;

  /** Where the outcomes of forwarded sends go once they are committed and acknowledged. */
  public interface Outcomes {
    /** A fresh outbox record name, for a message sent back to the outbox (see {@link SendLog}). */
    String outboxName();

    /** A forwarded send was delivered or failed for good. */
    void settled(SendLog.Settled settled);

    /** A forwarded send went back to the outbox, to go again. */
    void sendAgain();
  }

  public MessageReceiver(ClientContext ctx, SessionHealer healer, HomeForwarder forwarder, Outcomes outcomes) {
    this.ctx = ctx;
    this.healer = healer;
    this.forwarder = forwarder;
    this.outcomes = outcomes;
  }

  /**
   * Our mailboxes to subscribe, all on the home server (the only one we connect to): the
   * inboxes of the contacts {@code which} accepts, and the forwarder mailbox if there is one.
   * Fills {@code contactByInbox}.
   */
  private List<OwnedMailbox> ourMailboxes(Predicate<ContactRecord> which, Map<ByteString, String> contactByInbox) {
    List<OwnedMailbox> out = new ArrayList<>();
    ServerAddress home = ctx.homeServer();
    try (LocalStore.Txn txn = ctx.store().begin()) {
      for (ContactRecord c : ContactBook.all(txn)) {
        if (!which.test(c)) {
          continue;
        }
        if (!home.sameKey(ServerAddress.parse(c.getInbox().getServer()))) {
          log.warn("a contact's mailbox is not on the home server; it is not read");
          continue;
        }
        out.add(c.getInbox());
        contactByInbox.put(c.getInbox().getMailboxId(), c.getId());
      }
    }
    forwarder.mailbox().ifPresent(out::add);
    return out;
  }

  /** Reconnects of the receive streams allowed in one receive call. */
  static final int MAX_RECONNECTS = 5;

  /**
   * One receive stream: what we write to it, and the answers it owes us. Events name the stream
   * they came from. While an answer is owed (the challenge after opening, a Subscribed for each
   * Subscribe), the dialer is told that a call waits, so that a line over which nothing comes
   * back is given up ({@link Dialer}) and the stream fails, to be opened again on the next line.
   */
  private static final class Stream {
    final ServerAddress server;
    final Dialer dialer;
    StreamObserver<ReceiveRequest> requests;
    byte[] nonce;
    private int owed;
    private Dialer.Call waiting;

    Stream(ServerAddress server, Dialer dialer) {
      this.server = server;
      this.dialer = dialer;
    }

    StreamObserver<ReceiveRequest> requests() {
      return requests;
    }

    /** {@code n} more answers are owed. */
    void owe(int n) {
      if (owed == 0 && n > 0) {
        waiting = dialer.callStarted(server);
      }
      owed += n;
    }

    /** One owed answer came. */
    void answered() {
      if (owed > 0 && --owed == 0) {
        waiting.done();
        waiting = null;
      }
    }

    boolean owes() {
      return owed > 0;
    }

    /** What was owed did not come in time: counts against the line if nothing at all came back. */
    void timedOut() {
      if (waiting != null) {
        waiting.timedOut();
      }
    }

    /** The stream is over: nothing more is waited for. */
    void forget() {
      owed = 0;
      if (waiting != null) {
        waiting.done();
        waiting = null;
      }
    }
  }

  private sealed interface Event permits Challenge, Arrived, Failed, Subscribed, Wake {
    ServerAddress server();

    Stream stream();
  }

  private record Challenge(ServerAddress server, Stream stream, byte[] nonce) implements Event {}

  private record Arrived(ServerAddress server, Stream stream, Delivery delivery) implements Event {}

  private record Failed(ServerAddress server, Stream stream, Throwable error) implements Event {}

  private record Subscribed(ServerAddress server, Stream stream) implements Event {}

  /** From outside the loop: the contacts changed, or the loop is to stop. */
  private record Wake(ServerAddress server, Stream stream) implements Event {}

  private static boolean isTransient(Throwable t) {
    return t instanceof StatusRuntimeException s && ServerConnections.isConnectionLost(s);
  }

  /**
   * Receives until {@code idle} passes with nothing new, or until {@code max} messages were
   * handed to {@code listener}; what arrives beyond that stays (in the local inbox or on the
   * server) for the next receive. Returns the number of messages handed to {@code listener}.
   */
  public int receive(Duration idle, int max, MessageListener listener) {
    return receive(idle, max, listener, c -> true);
  }

  /**
   * Fetches and processes what waits in one contact's mailbox (its acceptance, above all) until
   * {@code idle} passes with nothing new, keeping any messages in the local inbox for the next
   * {@link #receive}.
   */
  public void collect(Duration idle, String contactId) {
    receive(idle, 0, null, c -> c.getId().equals(contactId));
  }

  /** With a null listener, messages stay in the local inbox. */
  private int receive(Duration idle, int max, MessageListener listener, Predicate<ContactRecord> which) {
    forgetOldEnvelopeIds();
    // Session restarts that could not go out before (network down, mailbox full).
    healer.flush(which);
    int handed = listener == null ? 0 : handOverInbox(listener, max);
    if (listener != null && handed >= max) {
      return handed;
    }
    Map<ServerAddress, List<OwnedMailbox>> byServer = new HashMap<>();
    Map<ByteString, String> contactByInbox = new HashMap<>();
    List<OwnedMailbox> ours = ourMailboxes(which, contactByInbox);
    if (!ours.isEmpty()) {
      byServer.put(ctx.homeServer(), ours);
    }
    if (byServer.isEmpty()) {
      return handed;
    }
    BlockingQueue<Event> events = new LinkedBlockingQueue<>();
    Map<ServerAddress, Stream> streams = new HashMap<>();
    try {
      for (ServerAddress server : byServer.keySet()) {
        streams.put(server, open(server, events));
      }
      // While any stream owes an answer (the challenge, a Subscribed), wait as long as any call
      // may take; only then does the idle clock start, so a slow link is never mistaken for an
      // empty mailbox. Nor is a line that stalled: when the idle time has passed, each stream
      // is asked once more for an answer (a Subscribe of a mailbox it has, which the server
      // answers after everything it sent before), and the receive ends when every answer came
      // with nothing new before it. A stream whose line stalls meanwhile fails (the dialer gives
      // the line up) and is opened again on the next line.
      long owedDeadline = System.nanoTime() + ctx.net().callTimeout().toNanos();
      Map<ServerAddress, Boolean> checked = new HashMap<>();
      int reconnects = 0;
      while (true) {
        boolean owing = streams.values().stream().anyMatch(Stream::owes);
        Event event;
        try {
          event = next(events, owing, owedDeadline, idle);
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
          return handed;
        }
        if (event == null && owing) {
          Stream late = streams.values().stream().filter(Stream::owes).findFirst().orElseThrow();
          late.timedOut();
          throw ctx.net().notAnsweredInTime(late.server, null);
        }
        if (event == null) {
          List<Stream> unchecked = streams.values().stream()
              .filter(s -> !checked.getOrDefault(s.server, false)).toList();
          if (unchecked.isEmpty()) {
            return handed;
          }
          for (Stream s : unchecked) {
            checked.put(s.server, true);
            subscribe(s, byServer.get(s.server).subList(0, 1));
          }
          owedDeadline = System.nanoTime() + ctx.net().callTimeout().toNanos();
          continue;
        }
        if (event.stream() != streams.get(event.server())) {
          continue; // From a stream that has been replaced.
        }
        if (event instanceof Challenge c) {
          Stream s = streams.get(c.server());
          s.answered();
          s.nonce = c.nonce();
          subscribe(s, byServer.get(c.server()));
        } else if (event instanceof Subscribed sub) {
          streams.get(sub.server()).answered();
          if (streams.values().stream().noneMatch(Stream::owes) && streams.keySet().stream()
              .allMatch(server -> checked.getOrDefault(server, false))) {
            // Every check came back with nothing new since: the idle time has passed already.
            return handed;
          }
        } else if (event instanceof Arrived a) {
          checked.put(a.server(), false);
          handed += process(streams.get(a.server()).requests(), a.delivery(), contactByInbox, listener, max - handed);
          if (listener != null && handed >= max) {
            return handed;
          }
        } else if (event instanceof Failed f) {
          if (isTransient(f.error()) && reconnects < MAX_RECONNECTS) {
            // The carrier died under the stream: open it again (the dialer finds a carrier that
            // works). Deliveries not yet acknowledged come again and are recognised as seen.
            reconnects++;
            log.debug("receive stream lost; reconnecting");
            streams.get(f.server()).forget();
            streams.put(f.server(), open(f.server(), events));
            checked.put(f.server(), false);
            owedDeadline = System.nanoTime() + ctx.net().callTimeout().toNanos();
            continue;
          }
          throw failure(f);
        }
      }
    } finally {
      closeAll(streams.values());
    }
  }

  /** What the always-on loop ({@link #stream}) reports, on its own thread. */
  public interface Hooks {
    /** Whether to end the loop; checked after every {@link #wake}. */
    boolean stopping();

    /** Every stream is open and subscribed to every mailbox (again, after a failure). */
    void connected();

    /** A delivery was kept: the local inbox may hold something new. */
    void delivered(Optional<String> establishedContactLabel);
  }

  /** How often an always-on loop with nothing arriving checks that its streams still answer. */
  static final Duration LIVENESS_CHECK = Duration.ofSeconds(60);

  private volatile BlockingQueue<Event> wakeUps;

  /**
   * Tells a running {@link #stream} loop to look at the contacts again (a mailbox was added or
   * removed) and at {@link Hooks#stopping}.
   */
  public void wake() {
    BlockingQueue<Event> q = wakeUps;
    if (q != null) {
      q.add(new Wake(null, null));
    }
  }

  /**
   * Keeps a receive stream open to every server that holds one of our mailboxes, subscribed to
   * all of them (mailboxes added meanwhile are subscribed on {@link #wake}), and keeps whatever
   * arrives in the local inbox, acknowledging each delivery once it is stored. Messages are not
   * handed over here: {@link Hooks#delivered} says that there are some. Returns when
   * {@link Hooks#stopping} says so; throws when a stream fails, for the caller to wait and call
   * again (the dialer picks the carrier each time).
   *
   * <p>With nothing arriving for {@link #LIVENESS_CHECK}, each stream is asked for an answer
   * (a subscription it has already), so a line that died without a word fails the stream
   * within the call timeout.
   *
   * @throws FerryException UNREACHABLE, SERVER_KEY_MISMATCH, REJECTED as the streams failed
   */
  public void stream(Hooks hooks) {
    BlockingQueue<Event> events = new LinkedBlockingQueue<>();
    wakeUps = events;
    Map<ServerAddress, Stream> streams = new HashMap<>();
    try {
      forgetOldEnvelopeIds();
      healer.flush(c -> true);
      Map<ServerAddress, List<OwnedMailbox>> byServer = new HashMap<>();
      Map<ByteString, String> contactByInbox = new HashMap<>();
      Map<ServerAddress, java.util.Set<ByteString>> subscribed = new HashMap<>();
      boolean connected = false;
      long owedDeadline = 0;
      boolean refresh = true;
      while (!hooks.stopping()) {
        if (refresh) {
          refresh = false;
          byServer.clear();
          contactByInbox.clear();
          // A stream to the home server even with no mailboxes yet: connectivity is known, and
          // the first invitation's mailbox is subscribed on it at once.
          byServer.put(ctx.homeServer(), ourMailboxes(c -> true, contactByInbox));
          for (Map.Entry<ServerAddress, List<OwnedMailbox>> e : byServer.entrySet()) {
            Stream s = streams.get(e.getKey());
            if (s == null) {
              streams.put(e.getKey(), open(e.getKey(), events));
              owedDeadline = System.nanoTime() + ctx.net().callTimeout().toNanos();
              connected = false;
            } else if (s.nonce != null) {
              java.util.Set<ByteString> have = subscribed.computeIfAbsent(e.getKey(), k -> new java.util.HashSet<>());
              List<OwnedMailbox> fresh = e.getValue().stream()
                  .filter(m -> !have.contains(m.getMailboxId())).toList();
              if (!fresh.isEmpty()) {
                subscribe(s, fresh);
                fresh.forEach(m -> have.add(m.getMailboxId()));
                owedDeadline = System.nanoTime() + ctx.net().callTimeout().toNanos();
              }
            }
          }
        }
        boolean owing = streams.values().stream().anyMatch(Stream::owes);
        Event event;
        try {
          event = next(events, owing, owedDeadline, LIVENESS_CHECK);
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
          return;
        }
        if (event == null && owing) {
          Stream late = streams.values().stream().filter(Stream::owes).findFirst().orElseThrow();
          late.timedOut();
          throw ctx.net().notAnsweredInTime(late.server, null);
        }
        if (event == null) {
          for (Stream s : streams.values()) {
            List<OwnedMailbox> some = byServer.getOrDefault(s.server, List.of());
            if (s.nonce != null && !some.isEmpty()) {
              subscribe(s, some.subList(0, 1));
            }
          }
          owedDeadline = System.nanoTime() + ctx.net().callTimeout().toNanos();
          continue;
        }
        if (event instanceof Wake) {
          refresh = true;
          continue;
        }
        if (event.stream() != streams.get(event.server())) {
          continue;
        }
        if (event instanceof Challenge c) {
          Stream s = streams.get(c.server());
          s.answered();
          s.nonce = c.nonce();
          List<OwnedMailbox> all = byServer.getOrDefault(c.server(), List.of());
          subscribe(s, all);
          subscribed.put(c.server(), new java.util.HashSet<>(all.stream().map(OwnedMailbox::getMailboxId).toList()));
        } else if (event instanceof Subscribed sub) {
          streams.get(sub.server()).answered();
        } else if (event instanceof Arrived a) {
          Outcome outcome = processOne(streams.get(a.server()).requests(), a.delivery(), contactByInbox);
          hooks.delivered(Optional.ofNullable(outcome.established()));
        } else if (event instanceof Failed f) {
          throw failure(f);
        }
        if (!connected && streams.values().stream().allMatch(x -> x.nonce != null && !x.owes())) {
          connected = true;
          hooks.connected();
        }
      }
    } finally {
      wakeUps = null;
      closeAll(streams.values());
    }
  }

  /**
   * The next event; null if none came while an answer is owed until {@code owedDeadline}
   * (System.nanoTime), or otherwise within {@code quiet}.
   */
  private static Event next(BlockingQueue<Event> events, boolean owing, long owedDeadline, Duration quiet)
      throws InterruptedException {
    long waitMillis = owing
        ? Math.max(0, TimeUnit.NANOSECONDS.toMillis(owedDeadline - System.nanoTime()))
        : quiet.toMillis();
    return events.poll(waitMillis, TimeUnit.MILLISECONDS);
  }

  private FerryException failure(Failed f) {
    return f.error() instanceof StatusRuntimeException s
        ? ctx.net().failure(f.server(), s)
        : new FerryException(FerryException.Reason.UNREACHABLE,
            "receive from " + f.server().hostPort() + " failed: " + f.error().getMessage(), f.error());
  }

  private static void closeAll(java.util.Collection<Stream> streams) {
    streams.forEach(s -> {
      s.forget();
      try {
        s.requests().onCompleted();
      } catch (RuntimeException ignored) {
        // The stream is already gone.
      }
    });
  }

  private Stream open(ServerAddress server, BlockingQueue<Event> events) {
    Stream stream = new Stream(server, ctx.net().dialer());
    stream.owe(1); // The server speaks first, with the challenge.
    // Only ever the home server: every mailbox of ours is there.
    stream.requests = MailboxesGrpc.newStub(ctx.net().channel(ctx.homeServer())).receive(new StreamObserver<>() {
      @Override
      public void onNext(ReceiveResponse r) {
        switch (r.getKindCase()) {
          case CHALLENGE -> events.add(new Challenge(server, stream, r.getChallenge().getNonce().toByteArray()));
          case DELIVERY -> events.add(new Arrived(server, stream, r.getDelivery()));
          case SUBSCRIBED -> events.add(new Subscribed(server, stream));
          default -> { }
        }
      }

      @Override
      public void onError(Throwable t) {
        events.add(new Failed(server, stream, t));
      }

      @Override
      public void onCompleted() {
        events.add(new Failed(server, stream, new IllegalStateException("server ended the stream")));
      }
    });
    return stream;
  }

  /** Subscribes {@code stream} to our mailboxes; each owes a Subscribed. */
  private static void subscribe(Stream stream, List<OwnedMailbox> mailboxes) {
    byte[] nonce = stream.nonce;
    stream.owe(mailboxes.size());
    for (OwnedMailbox m : mailboxes) {
      byte[] mailboxId = m.getMailboxId().toByteArray();
      byte[] signature = OwnerKeys.sign(
          OwnerKeys.privateKey(m.getOwnerPrivateKey().toByteArray()),
          OwnerKeys.RECEIVE_CONTEXT, nonce, mailboxId);
      stream.requests().onNext(ReceiveRequest.newBuilder()
          .setSubscribe(Subscribe.newBuilder()
              .setMailboxId(ByteString.copyFrom(mailboxId))
              .setSignature(ByteString.copyFrom(signature)))
          .build());
    }
  }

  private int process(
      StreamObserver<ReceiveRequest> stream,
      Delivery delivery,
      Map<ByteString, String> contactByInbox,
      MessageListener listener,
      int max) {
    Outcome outcome = processOne(stream, delivery, contactByInbox);
    if (listener == null) {
      return 0;
    }
    if (outcome.established() != null) {
      listener.onContactEstablished(outcome.established());
    }
    return handOverInbox(listener, max);
  }

  /**
   * Keeps one delivery (in one transaction: see the class comment), then acknowledges it, then
   * sends a session restart it called for.
   */
  private Outcome processOne(
      StreamObserver<ReceiveRequest> stream, Delivery delivery, Map<ByteString, String> contactByInbox) {
    byte[] envelopeId = delivery.getEnvelope().getId().toByteArray();
    String seenKey = SEEN + HexFormat.of().formatHex(envelopeId);
    // A server can replay an old envelope's body under a new id: recognise the body too, so
    // that a replay is dropped as what it is and never taken for a session out of step.
    String bodyKey = SEEN + "body-" + HexFormat.of().formatHex(
        Kdf.sha256(delivery.getEnvelope().getBody().toByteArray()));
    String contactId = contactByInbox.get(delivery.getMailboxId());
    if (contactId == null && forwarder.mailbox()
        .filter(m -> m.getMailboxId().equals(delivery.getMailboxId())).isPresent()) {
      takeOutcome(stream, delivery, seenKey);
      return Outcome.NOTHING;
    }
    Outcome outcome = Outcome.NOTHING;
    try (LocalStore.Txn txn = ctx.store().begin()) {
      if (txn.get(seenKey).isEmpty() && txn.get(bodyKey).isEmpty()) {
        outcome = decryptInto(txn, delivery, envelopeId, contactId, List.of(seenKey, bodyKey));
      } else if (txn.get(seenKey).isEmpty()) {
        log.debug("dropped a replayed envelope");
        txn.put(seenKey, seenValue());
        txn.commit();
      }
    }
    stream.onNext(ReceiveRequest.newBuilder()
        .setAck(Ack.newBuilder().setMailboxId(delivery.getMailboxId()).setDeliveryId(delivery.getDeliveryId()))
        .build());
    if (outcome.healing()) {
      healer.flush(c -> c.getId().equals(contactId));
    }
    return outcome;
  }

  /**
   * Keeps the outcome of a forwarded send (from our forwarder mailbox: never a message) in one
   * transaction with its envelope id, acknowledges it, then tells {@link Outcomes}.
   */
  private void takeOutcome(StreamObserver<ReceiveRequest> stream, Delivery delivery, String seenKey) {
    Optional<SendLog.Settled> settled = Optional.empty();
    boolean[] sentBack = {false};
    try (LocalStore.Txn txn = ctx.store().begin()) {
      if (txn.get(seenKey).isEmpty()) {
        settled = SendLog.takeOutcome(txn, delivery.getEnvelope().getBody().toByteArray(), ctx.clock().millis(), () -> {
          sentBack[0] = true;
          return outcomes.outboxName();
        });
        txn.put(seenKey, seenValue());
        txn.commit();
      }
    }
    stream.onNext(ReceiveRequest.newBuilder()
        .setAck(Ack.newBuilder().setMailboxId(delivery.getMailboxId()).setDeliveryId(delivery.getDeliveryId()))
        .build());
    settled.ifPresent(outcomes::settled);
    if (sentBack[0]) {
      outcomes.sendAgain();
    }
  }

  /**
   * What one envelope came to: the label of a contact whose handshake it completed, if any, and
   * whether a session restart (a request or an answer) is due for its contact.
   */
  private record Outcome(String established, boolean healing) {
    static final Outcome NOTHING = new Outcome(null, false);
  }

  private byte[] seenValue() {
    return java.nio.ByteBuffer.allocate(8).putLong(ctx.clock().millis()).array();
  }

  /** Opens, decrypts and records one envelope, committing {@code txn} or a transaction of its own. */
  private Outcome decryptInto(
      LocalStore.Txn txn, Delivery delivery, byte[] envelopeId, String contactId, List<String> seenKeys) {
    byte[] mailboxId = delivery.getMailboxId().toByteArray();
    Instant now = ctx.clock().instant();
    ContactRecord contact = contactId == null ? null : ContactBook.byId(txn, contactId).orElse(null);
    if (contact == null) {
      log.debug("dropped an envelope for a mailbox that is no contact's");
      return failed(null, null, envelopeId, seenKeys, ByteString.EMPTY);
    }
    EnvelopeSealer.Opened opened;
    try {
      ECPrivateKey sealKey = new ECPrivateKey(contact.getInbox().getSealPrivateKey().toByteArray());
      opened = EnvelopeSealer.open(sealKey, mailboxId, delivery.getEnvelope().getBody().toByteArray());
    } catch (InvalidKeyException | InvalidMessageException e) {
      return failed(contact, InboxMessage.Notice.UNREADABLE, envelopeId, seenKeys, ByteString.EMPTY);
    }
    if (opened.type() == SessionHealer.RESET_TYPE) {
      ContactRecord.Builder updated = contact.toBuilder();
      switch (healer.take(txn, contact, updated, opened.message())) {
        case RESTARTED -> {
          putInbox(txn, now, envelopeId, notice(contact, envelopeId, now, InboxMessage.Notice.SESSION_RESTARTED));
          ContactBook.put(txn, updated.build());
          seenKeys.forEach(k -> txn.put(k, seenValue()));
          txn.commit();
          return new Outcome(null, true);
        }
        case STALE -> {
          log.debug("dropped a session reset request taken before");
          return failed(null, null, envelopeId, seenKeys, ByteString.EMPTY);
        }
        case IDENTITY_CHANGED -> {
          return failed(contact, InboxMessage.Notice.IDENTITY_CHANGED, envelopeId, seenKeys,
              updated.getPendingIdentityKey());
        }
        default -> {
          return failed(contact, InboxMessage.Notice.UNREADABLE, envelopeId, seenKeys, ByteString.EMPTY);
        }
      }
    }
    Content content;
    try {
      content = decrypt(txn, contact, opened);
    } catch (Undecryptable e) {
      return failed(contact, e.notice, envelopeId, seenKeys, e.identityKey);
    }
    String established = null;
    // A message decrypted: the session works both ways, so a failure from now on is news.
    ContactRecord.Builder updated = contact.toBuilder().setLastReceivedAt(now.getEpochSecond()).setRestartedAt(0);
    switch (content.getBodyCase()) {
      case TEXT -> putInbox(txn, now, envelopeId, InboxMessage.newBuilder()
          .setContactId(contact.getId())
          .setEnvelopeId(ByteString.copyFrom(envelopeId))
          .setSentAt(content.getSentAt())
          .setReceivedAt(now.toEpochMilli())
          .setText(content.getText().getBody())
          .build());
      case CONTACT_CARD -> {
        MailboxAddress replyTo = content.getContactCard().getReplyTo();
        if (contact.getState() == ContactRecord.State.INVITED && isValid(replyTo)) {
          updated.setState(ContactRecord.State.ESTABLISHED).setOutbox(replyTo);
          established = contact.getLabel();
          rememberBridges(replyTo);
        } else {
          log.warn("ignored a contact card that does not fit the contact's state");
        }
      }
      case SESSION_RESTARTED -> {
        // The contact took our reset request: the new session works both ways now.
        if (content.getSessionRestarted().getRequestedAt() == contact.getResetRequestedAt()) {
          updated.setResetRequestedAt(0);
        }
        putInbox(txn, now, envelopeId, notice(contact, envelopeId, now, InboxMessage.Notice.SESSION_RESTARTED));
      }
      default -> log.warn("ignored content of an unknown kind; a newer client may have sent it");
    }
    ContactBook.put(txn, updated.build());
    seenKeys.forEach(k -> txn.put(k, seenValue()));
    txn.commit();
    return new Outcome(established, false);
  }

  private static InboxMessage notice(ContactRecord contact, byte[] envelopeId, Instant now, InboxMessage.Notice kind) {
    return InboxMessage.newBuilder()
        .setContactId(contact.getId())
        .setEnvelopeId(ByteString.copyFrom(envelopeId))
        .setReceivedAt(now.toEpochMilli())
        .setNotice(kind)
        .build();
  }

  private void putInbox(LocalStore.Txn txn, Instant now, byte[] envelopeId, InboxMessage m) {
    txn.put(INBOX + String.format("%020d", nextInboxPosition(now)) + "/" + HexFormat.of().formatHex(envelopeId),
        m.toByteArray());
  }

  /** The last inbox position this client handed out (see {@link #nextInboxPosition}). */
  private final java.util.concurrent.atomic.AtomicLong lastInboxPosition =
      new java.util.concurrent.atomic.AtomicLong();

  /**
   * Where a message goes in the inbox, which hands messages over in key order: the receive time
   * in thousandths of a millisecond, made strictly greater than the last one. Taken inside the
   * (serialised) transaction that writes it, so positions follow arrival order even for several
   * arrivals in one millisecond; the time alone let those be ordered by their random envelope
   * ids, and a burst of redeliveries reached the app out of order.
   */
  private long nextInboxPosition(Instant now) {
    long candidate = now.toEpochMilli() * 1000;
    return lastInboxPosition.accumulateAndGet(candidate, (last, c) -> Math.max(last + 1, c));
  }

  /**
   * Records an envelope that yielded no message: its ids (so a redelivery is not reported twice)
   * and, if it came from a contact, a notice for the app, in a transaction of its own so that
   * nothing the failed decryption touched is kept. An envelope out of step asks the contact to
   * restart the session. One under another identity key ({@code newIdentityKey}, when known)
   * leaves that key pending in the contact's record, in the same transaction as the notice:
   * from then on nothing is sent to the contact until the user verifies it.
   */
  private Outcome failed(ContactRecord contact, InboxMessage.Notice kind, byte[] envelopeId, List<String> seenKeys,
      ByteString newIdentityKey) {
    Instant now = ctx.clock().instant();
    boolean healing = false;
    try (LocalStore.Txn txn = ctx.store().begin()) {
      if (contact != null) {
        log.info("a message could not be decrypted ({}); the app is told", kind);
        putInbox(txn, now, envelopeId, notice(contact, envelopeId, now, kind).toBuilder()
            .setIdentityKey(newIdentityKey)
            .build());
        if (kind == InboxMessage.Notice.IDENTITY_CHANGED && !newIdentityKey.isEmpty()) {
          ContactBook.put(txn, contact.toBuilder().setPendingIdentityKey(newIdentityKey).setVerified(false).build());
        }
        if (kind == InboxMessage.Notice.OUT_OF_STEP) {
          ContactRecord.Builder updated = SessionHealer.wantReset(contact.toBuilder(), now);
          healing = updated.getResetRequestPending();
          ContactBook.put(txn, updated.build());
        }
      }
      seenKeys.forEach(k -> txn.put(k, seenValue()));
      txn.commit();
    }
    return new Outcome(null, healing);
  }

  /** A message that yielded no content, and the notice it calls for. */
  private static final class Undecryptable extends Exception {
    private static final long serialVersionUID = 1L;
    final transient InboxMessage.Notice notice;
    /** For IDENTITY_CHANGED: the key the message came with, if known; empty otherwise. */
    final transient ByteString identityKey;

    Undecryptable(InboxMessage.Notice notice, Throwable cause) {
      this(notice, cause, ByteString.EMPTY);
    }

    Undecryptable(InboxMessage.Notice notice, Throwable cause, ByteString identityKey) {
      super(notice.name(), cause, false, false);
      this.notice = notice;
      this.identityKey = identityKey;
    }
  }

  private Content decrypt(LocalStore.Txn txn, ContactRecord contact, EnvelopeSealer.Opened opened)
      throws Undecryptable {
    byte[] plain;
    PreKeySignalMessage preKeyMessage = null;
    try {
      SessionCipher cipher = new SessionCipher(ctx.protocol(txn), ClientContext.address(contact));
      plain = switch (opened.type()) {
        case CiphertextMessage.PREKEY_TYPE -> cipher.decrypt(preKeyMessage = new PreKeySignalMessage(opened.message()));
        case CiphertextMessage.WHISPER_TYPE -> cipher.decrypt(new SignalMessage(opened.message()));
        default -> throw new Undecryptable(InboxMessage.Notice.UNREADABLE, null);
      };
    } catch (UntrustedIdentityException e) {
      IdentityKey untrusted = e.getUntrustedIdentity() != null ? e.getUntrustedIdentity()
          : preKeyMessage != null ? preKeyMessage.getIdentityKey() : null;
      throw new Undecryptable(InboxMessage.Notice.IDENTITY_CHANGED, e,
          untrusted == null ? ByteString.EMPTY : ByteString.copyFrom(untrusted.serialize()));
    } catch (DuplicateMessageException | InvalidMessageException | InvalidKeyIdException | NoSessionException e) {
      // The seal opened, so the contact (who alone holds its key) made this envelope, and it
      // was not altered: a message key used twice, a chain we do not know or a prekey that is
      // gone mean that the two sessions are out of step (a restored copy, lost steps).
      throw new Undecryptable(InboxMessage.Notice.OUT_OF_STEP, e);
    } catch (InvalidKeyException | InvalidVersionException | LegacyMessageException e) {
      throw new Undecryptable(InboxMessage.Notice.UNREADABLE, e);
    }
    try {
      return Content.parseFrom(plain);
    } catch (InvalidProtocolBufferException e) {
      throw new Undecryptable(InboxMessage.Notice.UNREADABLE, e);
    }
  }

  /** Keeps the well-formed bridge lines a contact gave for its server. */
  private void rememberBridges(MailboxAddress a) {
    List<BridgeLine> lines = InvitationCodec.readBridges(
        a.getBridgesList().subList(0, Math.min(a.getBridgesCount(), InvitationCodec.MAX_BRIDGES)), "a contact card");
    ctx.routes().addBridges(ServerAddress.parse(a.getServer()), lines, true);
  }

  private static boolean isValid(MailboxAddress a) {
    try {
      ServerAddress.parse(a.getServer());
      new ECPublicKey(a.getSealKey().toByteArray());
      return a.getMailboxId().size() == 32 && a.getSendCapability().size() == 32;
    } catch (IllegalArgumentException | InvalidKeyException e) {
      return false;
    }
  }

  private void forgetOldEnvelopeIds() {
    long cutoff = ctx.clock().instant().minus(SEEN_RETENTION).toEpochMilli();
    try (LocalStore.Txn txn = ctx.store().begin()) {
      ctx.store().scan(SEEN).forEach((name, seenAt) -> {
        if (java.nio.ByteBuffer.wrap(seenAt).getLong() < cutoff) {
          txn.delete(name);
        }
      });
      txn.commit();
    }
  }

  /**
   * Hands the messages waiting in the local inbox, at most {@code max}, to the listener,
   * forgetting each once the listener has returned. One hand-over at a time, so that no
   * message is handed over twice.
   */
  public synchronized int handOverInbox(MessageListener listener, int max) {
    int n = 0;
    // A page at a time (each entry is forgotten once handed over): a long inbox never sits in
    // memory whole.
    Map<String, byte[]> page;
    while (n < max && !(page = ctx.store().scan(INBOX, INBOX, Math.min(max - n, 64))).isEmpty()) {
      n += handOver(page, listener);
    }
    return n;
  }

  /** Hands over one page of the inbox; returns how many entries were handed over. */
  private int handOver(Map<String, byte[]> page, MessageListener listener) {
    int n = 0;
    for (Map.Entry<String, byte[]> e : page.entrySet()) {
      InboxMessage m;
      String label;
      Optional<String> newSafetyNumber;
      try (LocalStore.Txn txn = ctx.store().begin()) {
        m = InboxMessage.parseFrom(e.getValue());
        label = ContactBook.byId(txn, m.getContactId()).map(ContactRecord::getLabel).orElse("(deleted contact)");
        newSafetyNumber = m.getIdentityKey().isEmpty() ? Optional.empty() : Optional.of(SafetyNumbers.of(
            ctx.protocol(txn).getIdentityKeyPair().getPublicKey(), new IdentityKey(m.getIdentityKey().toByteArray())));
      } catch (InvalidProtocolBufferException | InvalidKeyException ex) {
        throw new FerryException(FerryException.Reason.STORAGE, "a stored message is unreadable", ex);
      }
      Instant receivedAt = Instant.ofEpochMilli(m.getReceivedAt());
      String messageId = HexFormat.of().formatHex(m.getEnvelopeId().toByteArray());
      switch (m.getNotice()) {
        case OUT_OF_STEP -> listener.onDecryptionFailure(new DecryptionFailure(
            label, DecryptionFailure.Kind.OUT_OF_STEP, receivedAt, messageId, Optional.empty()));
        case IDENTITY_CHANGED -> listener.onDecryptionFailure(new DecryptionFailure(
            label, DecryptionFailure.Kind.IDENTITY_CHANGED, receivedAt, messageId, newSafetyNumber));
        case UNREADABLE -> listener.onDecryptionFailure(new DecryptionFailure(
            label, DecryptionFailure.Kind.UNREADABLE, receivedAt, messageId, Optional.empty()));
        case SESSION_RESTARTED -> listener.onSessionRestarted(label);
        default -> listener.onMessage(new ReceivedMessage(
            label, m.getText(), Instant.ofEpochMilli(m.getSentAt()), receivedAt, messageId));
      }
      try (LocalStore.Txn txn = ctx.store().begin()) {
        txn.delete(e.getKey());
        txn.commit();
      }
      n++;
    }
    return n;
  }
}
