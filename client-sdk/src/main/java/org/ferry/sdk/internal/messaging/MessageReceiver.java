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
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;
import org.ferry.proto.BridgeLine;
import org.ferry.proto.ServerAddress;
import org.ferry.proto.local.v1.ContactRecord;
import org.ferry.proto.local.v1.InboxMessage;
import org.ferry.proto.v1.Ack;
import org.ferry.proto.v1.Content;
import org.ferry.proto.v1.Delivery;
import org.ferry.proto.v1.MailboxAddress;
import org.ferry.proto.v1.MailboxesGrpc;
import org.ferry.proto.v1.ReceiveRequest;
import org.ferry.proto.v1.ReceiveResponse;
import org.ferry.proto.v1.Subscribe;
import org.ferry.sdk.FerryException;
import org.ferry.sdk.MessageListener;
import org.ferry.sdk.ReceivedMessage;
import org.ferry.sdk.internal.ClientContext;
import org.ferry.sdk.internal.invite.InvitationCodec;
import org.ferry.sdk.internal.contacts.ContactBook;
import org.ferry.sdk.internal.crypto.EnvelopeSealer;
import org.ferry.proto.OwnerKeys;
import org.ferry.sdk.internal.net.ServerConnections;
import org.ferry.sdk.internal.store.LocalStore;
import org.signal.libsignal.protocol.DuplicateMessageException;
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
 * <p>Envelopes that cannot be opened or decrypted (strangers, replays, damaged data) are
 * dropped and acknowledged, so they cannot block the mailbox.
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

  public MessageReceiver(ClientContext ctx) {
    this.ctx = ctx;
  }

  /** Reconnects of the receive streams allowed in one receive call. */
  static final int MAX_RECONNECTS = 5;

  /** One receive stream: what we write to it. Events name the stream they came from. */
  private static final class Stream {
    StreamObserver<ReceiveRequest> requests;

    StreamObserver<ReceiveRequest> requests() {
      return requests;
    }
  }

  private sealed interface Event permits Challenge, Arrived, Failed, Subscribed {
    ServerAddress server();

    Stream stream();
  }

  private record Challenge(ServerAddress server, Stream stream, byte[] nonce) implements Event {}

  private record Arrived(ServerAddress server, Stream stream, Delivery delivery) implements Event {}

  private record Failed(ServerAddress server, Stream stream, Throwable error) implements Event {}

  private record Subscribed(ServerAddress server, Stream stream) implements Event {}

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
    int handed = listener == null ? 0 : handOverInbox(listener, max);
    if (listener != null && handed >= max) {
      return handed;
    }
    Map<ServerAddress, List<ContactRecord>> byServer = new HashMap<>();
    Map<ByteString, String> contactByInbox = new HashMap<>();
    try (LocalStore.Txn txn = ctx.store().begin()) {
      for (ContactRecord c : ContactBook.all(txn)) {
        if (!which.test(c)) {
          continue;
        }
        byServer.computeIfAbsent(ServerAddress.parse(c.getInbox().getServer()), k -> new ArrayList<>()).add(c);
        contactByInbox.put(c.getInbox().getMailboxId(), c.getId());
      }
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
      // Until every mailbox is subscribed, wait as long as any call may take; only then does
      // the idle clock start, so a slow link is never mistaken for an empty mailbox.
      Map<ServerAddress, Integer> unsubscribed = new HashMap<>();
      byServer.forEach((server, contacts) -> unsubscribed.put(server, contacts.size()));
      long subscribeDeadline = System.nanoTime() + ctx.net().callTimeout().toNanos();
      int reconnects = 0;
      while (true) {
        boolean subscribing = unsubscribed.values().stream().anyMatch(n -> n > 0);
        long waitMillis = subscribing
            ? Math.max(0, TimeUnit.NANOSECONDS.toMillis(subscribeDeadline - System.nanoTime()))
            : idle.toMillis();
        Event event;
        try {
          event = events.poll(waitMillis, TimeUnit.MILLISECONDS);
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
          return handed;
        }
        if (event == null && subscribing) {
          throw new FerryException(FerryException.Reason.UNREACHABLE,
              "server " + byServer.keySet().iterator().next().hostPort() + " did not answer in time");
        }
        if (event == null) {
          return handed;
        }
        if (event.stream() != streams.get(event.server())) {
          continue; // From a stream that has been replaced.
        }
        if (event instanceof Challenge c) {
          subscribe(streams.get(c.server()).requests(), byServer.get(c.server()), c.nonce());
        } else if (event instanceof Subscribed sub) {
          unsubscribed.merge(sub.server(), -1, Integer::sum);
        } else if (event instanceof Arrived a) {
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
            streams.put(f.server(), open(f.server(), events));
            unsubscribed.put(f.server(), byServer.get(f.server()).size());
            subscribeDeadline = System.nanoTime() + ctx.net().callTimeout().toNanos();
            continue;
          }
          throw f.error() instanceof StatusRuntimeException s
              ? ctx.net().failure(f.server(), s)
              : new FerryException(FerryException.Reason.UNREACHABLE,
                  "receive from " + f.server().hostPort() + " failed: " + f.error().getMessage(), f.error());
        }
      }
    } finally {
      streams.values().forEach(s -> {
        try {
          s.requests().onCompleted();
        } catch (RuntimeException ignored) {
          // The stream is already gone.
        }
      });
    }
  }

  private Stream open(ServerAddress server, BlockingQueue<Event> events) {
    Stream stream = new Stream();
    stream.requests = MailboxesGrpc.newStub(ctx.net().channel(server)).receive(new StreamObserver<>() {
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

  private static void subscribe(
      StreamObserver<ReceiveRequest> stream, List<ContactRecord> contacts, byte[] nonce) {
    for (ContactRecord c : contacts) {
      byte[] mailboxId = c.getInbox().getMailboxId().toByteArray();
      byte[] signature = OwnerKeys.sign(
          OwnerKeys.privateKey(c.getInbox().getOwnerPrivateKey().toByteArray()),
          OwnerKeys.RECEIVE_CONTEXT, nonce, mailboxId);
      stream.onNext(ReceiveRequest.newBuilder()
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
    byte[] envelopeId = delivery.getEnvelope().getId().toByteArray();
    String seenKey = SEEN + HexFormat.of().formatHex(envelopeId);
    String established = null;
    try (LocalStore.Txn txn = ctx.store().begin()) {
      if (txn.get(seenKey).isEmpty()) {
        established = decryptInto(txn, delivery, envelopeId, contactByInbox.get(delivery.getMailboxId()));
      }
    }
    stream.onNext(ReceiveRequest.newBuilder()
        .setAck(Ack.newBuilder().setMailboxId(delivery.getMailboxId()).setDeliveryId(delivery.getDeliveryId()))
        .build());
    if (listener == null) {
      return 0;
    }
    if (established != null) {
      listener.onContactEstablished(established);
    }
    return handOverInbox(listener, max);
  }

  /**
   * Opens, decrypts and records one envelope, committing {@code txn}. Returns the label of a
   * contact this envelope completed the handshake of, if any.
   */
  private String decryptInto(LocalStore.Txn txn, Delivery delivery, byte[] envelopeId, String contactId) {
    String seenKey = SEEN + HexFormat.of().formatHex(envelopeId);
    byte[] mailboxId = delivery.getMailboxId().toByteArray();
    Instant now = ctx.clock().instant();
    byte[] seenValue = java.nio.ByteBuffer.allocate(8).putLong(now.toEpochMilli()).array();
    ContactRecord contact = contactId == null ? null : ContactBook.byId(txn, contactId).orElse(null);
    Content content = contact == null ? null : decrypt(txn, contact, mailboxId, delivery);
    if (content == null) {
      // Keep none of what a failed decryption may have touched; remember only the id.
      try (LocalStore.Txn drop = ctx.store().begin()) {
        drop.put(seenKey, seenValue);
        drop.commit();
      }
      return null;
    }
    String established = null;
    ContactRecord.Builder updated = contact.toBuilder().setLastReceivedAt(now.getEpochSecond());
    switch (content.getBodyCase()) {
      case TEXT -> txn.put(
          INBOX + String.format("%020d", now.toEpochMilli()) + "/" + HexFormat.of().formatHex(envelopeId),
          InboxMessage.newBuilder()
              .setContactId(contact.getId())
              .setEnvelopeId(ByteString.copyFrom(envelopeId))
              .setSentAt(content.getSentAt())
              .setReceivedAt(now.toEpochMilli())
              .setText(content.getText().getBody())
              .build()
              .toByteArray());
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
      default -> log.warn("ignored content of an unknown kind; a newer client may have sent it");
    }
    ContactBook.put(txn, updated.build());
    txn.put(seenKey, seenValue);
    txn.commit();
    return established;
  }

  private Content decrypt(LocalStore.Txn txn, ContactRecord contact, byte[] mailboxId, Delivery delivery) {
    try {
      ECPrivateKey sealKey = new ECPrivateKey(contact.getInbox().getSealPrivateKey().toByteArray());
      EnvelopeSealer.Opened opened =
          EnvelopeSealer.open(sealKey, mailboxId, delivery.getEnvelope().getBody().toByteArray());
      SessionCipher cipher = new SessionCipher(ctx.protocol(txn), ClientContext.address(contact));
      byte[] plain = switch (opened.type()) {
        case CiphertextMessage.PREKEY_TYPE -> cipher.decrypt(new PreKeySignalMessage(opened.message()));
        case CiphertextMessage.WHISPER_TYPE -> cipher.decrypt(new SignalMessage(opened.message()));
        default -> throw new InvalidMessageException("unknown message type " + opened.type());
      };
      return Content.parseFrom(plain);
    } catch (UntrustedIdentityException e) {
      log.warn("dropped a message whose sender's identity key is not the one on record");
    } catch (DuplicateMessageException e) {
      log.debug("dropped a message decrypted before");
    } catch (InvalidMessageException | InvalidKeyException | InvalidKeyIdException
        | InvalidVersionException | LegacyMessageException | NoSessionException
        | InvalidProtocolBufferException e) {
      log.warn("dropped an envelope that did not decrypt: {}", e.getClass().getSimpleName());
    }
    return null;
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
   * forgetting each once the listener has returned.
   */
  private int handOverInbox(MessageListener listener, int max) {
    int n = 0;
    for (Map.Entry<String, byte[]> e : ctx.store().scan(INBOX).entrySet()) {
      if (n >= max) {
        break;
      }
      InboxMessage m;
      String label;
      try (LocalStore.Txn txn = ctx.store().begin()) {
        m = InboxMessage.parseFrom(e.getValue());
        label = ContactBook.byId(txn, m.getContactId()).map(ContactRecord::getLabel).orElse("(deleted contact)");
      } catch (InvalidProtocolBufferException ex) {
        throw new FerryException(FerryException.Reason.STORAGE, "a stored message is unreadable", ex);
      }
      listener.onMessage(new ReceivedMessage(
          label,
          m.getText(),
          Instant.ofEpochMilli(m.getSentAt()),
          Instant.ofEpochMilli(m.getReceivedAt()),
          HexFormat.of().formatHex(m.getEnvelopeId().toByteArray())));
      try (LocalStore.Txn txn = ctx.store().begin()) {
        txn.delete(e.getKey());
        txn.commit();
      }
      n++;
    }
    return n;
  }
}
