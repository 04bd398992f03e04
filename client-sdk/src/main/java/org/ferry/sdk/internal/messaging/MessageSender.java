package org.ferry.sdk.internal.messaging;

import com.google.protobuf.ByteString;
import io.grpc.StatusRuntimeException;
import java.util.Arrays;
import java.util.HexFormat;
import org.ferry.proto.BridgeLine;
import org.ferry.proto.ServerAddress;
import org.ferry.proto.local.v1.ContactRecord;
import org.ferry.proto.local.v1.OutboxItem;
import org.ferry.proto.v1.ContactCard;
import org.ferry.proto.v1.Content;
import org.ferry.proto.v1.Envelope;
import org.ferry.proto.v1.MailboxAddress;
import org.ferry.proto.v1.SendRequest;
import org.ferry.sdk.FerryException;
import org.ferry.sdk.internal.ClientContext;
import org.ferry.sdk.internal.invite.InvitationCodec;
import org.ferry.sdk.internal.contacts.ContactBook;
import org.ferry.sdk.internal.crypto.EnvelopeSealer;
import org.ferry.sdk.internal.federation.HomeForwarder;
import org.ferry.sdk.internal.net.ServerConnections;
import org.ferry.sdk.internal.signal.ProtocolStore;
import org.ferry.sdk.internal.store.LocalStore;
import org.signal.libsignal.protocol.InvalidKeyException;
import org.signal.libsignal.protocol.InvalidMessageException;
import org.signal.libsignal.protocol.NoSessionException;
import org.signal.libsignal.protocol.SessionCipher;
import org.signal.libsignal.protocol.SignalProtocolAddress;
import org.signal.libsignal.protocol.UntrustedIdentityException;
import org.signal.libsignal.protocol.ecc.ECPrivateKey;
import org.signal.libsignal.protocol.ecc.ECPublicKey;
import org.signal.libsignal.protocol.message.CiphertextMessage;
import org.signal.libsignal.protocol.state.SessionRecord;

/**
 * Encrypts content for a contact, seals and pads it, and hands it to the contact's server: into
 * the mailbox directly when it is on our home server, else to the home server, which forwards it
 * ({@link HomeForwarder}). No other server is ever called.
 *
 * <p>The ratchet step is committed before the envelope leaves, so that a crash can never make
 * two messages under one message key. If the contact's server then refuses the envelope for
 * certain (a full mailbox, a bad capability: an answer given before anything was stored), the
 * session is rolled back to its state before the step: a refused send uses no ratchet state,
 * however many there are. A send whose outcome is unknown (the connection died) keeps its step;
 * the contact skips that message key, and libsignal allows up to 25,000 such gaps, beyond which
 * the contact's client restarts the session (see {@link SessionHealer}). {@link #send} queues
 * nothing for a later retry, so a retry by the user can never produce a second copy.
 *
 * <p>{@link #queue} is the other way: the sealed envelope is kept with its ratchet step, and
 * {@link #deliver(OutboxItem)} sends that same envelope as often as it takes (the outbox).
 *
 * <p>Nothing at all is sent to a contact whose new identity key waits for the user's
 * verification (IDENTITY_CHANGED), not even a session restart or a contact card.
 */
public final class MessageSender {
  /** Tries of one envelope when the connection drops under it. */
  static final int SEND_ATTEMPTS = 3;

  private final ClientContext ctx;
  private final HomeForwarder forwarder;

  public MessageSender(ClientContext ctx, HomeForwarder forwarder) {
    this.ctx = ctx;
    this.forwarder = forwarder;
  }

  /** Sends {@code content} to the contact with id {@code contactId}; returns the envelope id. */
  public byte[] send(String contactId, Content content) {
    byte[] envelopeId = ctx.randomBytes(16);
    Encrypted e;
    try (LocalStore.Txn txn = ctx.store().begin()) {
      e = encrypt(txn, contactId, content);
      txn.commit();
    }
    OutboxItem record = item(contactId, envelopeId, e).build();
    boolean forwarded;
    try {
      forwarded = deliver(e.to, envelopeId, e.body, record);
    } catch (Refused refused) {
      rollBack(e.address, e.before, e.after);
      throw refused.failure;
    }
    if (forwarded) {
      try (LocalStore.Txn txn = ctx.store().begin()) {
        SendLog.held(txn, HexFormat.of().formatHex(envelopeId), ctx.clock().millis());
        txn.commit();
      }
    }
    return envelopeId;
  }

  /**
   * Encrypts {@code content} for the contact and keeps the sealed envelope in the local store
   * under {@code name}, in one transaction with its ratchet step, for {@link #deliver(OutboxItem)}
   * to send (once or many times: it is the same envelope every time).
   *
   * @param name the record name, chosen in the transaction so that names follow commit order
   * @throws FerryException UNKNOWN_CONTACT, CONTACT_NOT_READY, IDENTITY_CHANGED, TOO_LARGE;
   *     nothing is kept then
   */
  public OutboxItem queue(String contactId, Content content, java.util.function.Supplier<String> name) {
    byte[] envelopeId = ctx.randomBytes(16);
    try (LocalStore.Txn txn = ctx.store().begin()) {
      Encrypted e = encrypt(txn, contactId, content);
      OutboxItem item = item(contactId, envelopeId, e).setContent(content).build();
      txn.put(name.get(), item.toByteArray());
      txn.commit();
      return item;
    }
  }

  /**
   * Encrypts a queued item's content again under the contact's current session (after a
   * verified identity change), keeping its envelope id, and stores it in place of the old.
   *
   * @throws FerryException CONTACT_NOT_READY while the new session is not set up yet, and as
   *     {@link #queue}
   */
  public OutboxItem reseal(String name, OutboxItem item) {
    try (LocalStore.Txn txn = ctx.store().begin()) {
      Encrypted e = encrypt(txn, item.getContactId(), item.getContent());
      OutboxItem updated = item.toBuilder()
          .setBody(ByteString.copyFrom(e.body))
          .setTo(e.to)
          .setReseal(false)
          .build();
      txn.put(name, updated.toByteArray());
      txn.commit();
      return updated;
    }
  }

  /**
   * Hands a queued envelope to the contact's server: into their mailbox if it is on our home
   * server, else to the home server for forwarding (recorded in {@link SendLog} first; the
   * caller marks it held). Sending it again after any failure is safe: the recipient keeps one
   * copy per envelope id.
   *
   * @return whether it went to the home server for another server (its outcome comes later)
   * @throws FerryException as the server or the network failed
   */
  public boolean deliver(OutboxItem item) {
    try {
      return deliver(item.getTo(), item.getEnvelopeId().toByteArray(), item.getBody().toByteArray(), item);
    } catch (Refused refused) {
      throw refused.failure;
    }
  }

  /** An envelope as the outbox (or, for a blocking send, the {@link SendLog}) keeps it. */
  private OutboxItem.Builder item(String contactId, byte[] envelopeId, Encrypted e) {
    return OutboxItem.newBuilder()
        .setContactId(contactId)
        .setEnvelopeId(ByteString.copyFrom(envelopeId))
        .setBody(ByteString.copyFrom(e.body))
        .setTo(e.to)
        .setQueuedAt(ctx.clock().millis());
  }

  /** A message encrypted for a contact and sealed, and the session just before and after. */
  private record Encrypted(
      MailboxAddress to, SignalProtocolAddress address, byte[] body, byte[] before, byte[] after) {}

  /** Takes a ratchet step in {@code txn} (not committed) and seals the result. */
  private Encrypted encrypt(LocalStore.Txn txn, String contactId, Content content) {
    ContactRecord contact = requireOutbox(txn, contactId);
    MailboxAddress to = contact.getOutbox();
    SignalProtocolAddress address = ClientContext.address(contact);
    ProtocolStore protocol = ctx.protocol(txn);
    byte[] before = sessionBytes(protocol, address);
    SessionCipher cipher = new SessionCipher(protocol, address);
    CiphertextMessage message;
    try {
      message = cipher.encrypt(content.toByteArray(), ctx.clock().instant());
    } catch (UntrustedIdentityException e) {
      throw identityChanged(contact.getLabel());
    } catch (NoSessionException e) {
      boolean restarting = contact.getResetRequestedAt() != 0 || contact.getResetRequestPending();
      throw new FerryException(FerryException.Reason.CONTACT_NOT_READY, restarting
          ? "the session with '" + contact.getLabel() + "' is being restarted; sending works again once "
              + "their answer has arrived (receive)"
          : "no session with '" + contact.getLabel() + "'", e);
    }
    byte[] after = sessionBytes(protocol, address);
    return new Encrypted(to, address, seal(to, message.getType(), message.serialize()), before, after);
  }

  /**
   * Seals {@code payload} as an envelope of {@code type} to the contact's mailbox, outside any
   * session, and hands it to their server. For control messages that must reach a contact whose
   * session is out of step.
   */
  void sendSealed(String contactId, int type, byte[] payload) {
    MailboxAddress to;
    try (LocalStore.Txn txn = ctx.store().begin()) {
      to = requireOutbox(txn, contactId).getOutbox();
    }
    try {
      deliver(to, ctx.randomBytes(16), seal(to, type, payload), null);
    } catch (Refused refused) {
      throw refused.failure;
    }
  }

  private static ContactRecord requireOutbox(LocalStore.Txn txn, String contactId) {
    ContactRecord contact = ContactBook.byId(txn, contactId)
        .orElseThrow(() -> new FerryException(FerryException.Reason.UNKNOWN_CONTACT, "contact is gone"));
    if (!contact.hasOutbox()) {
      throw new FerryException(
          FerryException.Reason.CONTACT_NOT_READY,
          "'" + contact.getLabel() + "' has not answered the invitation yet; run receive first");
    }
    if (!contact.getPendingIdentityKey().isEmpty()) {
      throw identityChanged(contact.getLabel());
    }
    return contact;
  }

  /** Sending to a contact whose new identity key waits for the user's verification. */
  private static FerryException identityChanged(String label) {
    return new FerryException(FerryException.Reason.IDENTITY_CHANGED,
        "the identity key of '" + label + "' changed, so their safety number did: nothing was sent. Compare the "
            + "new safety number (shown with the contact) with theirs, in person or over a trusted call, and "
            + "verify it; sending works again after that");
  }

  private static byte[] seal(MailboxAddress to, int type, byte[] serialized) {
    if (serialized.length > EnvelopeSealer.maxMessage()) {
      throw new FerryException(
          FerryException.Reason.TOO_LARGE,
          "message too large for one envelope: " + serialized.length + " > " + EnvelopeSealer.maxMessage() + " bytes");
    }
    ECPublicKey sealKey;
    try {
      sealKey = new ECPublicKey(to.getSealKey().toByteArray());
    } catch (InvalidKeyException e) {
      throw new FerryException(FerryException.Reason.STORAGE, "stored seal key is unreadable", e);
    }
    return EnvelopeSealer.seal(sealKey, to.getMailboxId().toByteArray(), type, serialized);
  }

  /** A send the server refused before storing anything: its ratchet step may be taken back. */
  private static final class Refused extends Exception {
    private static final long serialVersionUID = 1L;
    final transient FerryException failure;

    Refused(FerryException failure) {
      super(failure.getMessage(), null, false, false);
      this.failure = failure;
    }
  }

  /**
   * Answers the server gives after reading the request and before storing it. Anything else
   * (a lost connection, a deadline, an internal error) leaves the outcome unknown.
   */
  static boolean isRefusal(StatusRuntimeException e) {
    return switch (e.getStatus().getCode()) {
      case RESOURCE_EXHAUSTED, INVALID_ARGUMENT, PERMISSION_DENIED, NOT_FOUND, UNAUTHENTICATED,
          FAILED_PRECONDITION, OUT_OF_RANGE -> true;
      default -> false;
    };
  }

  /**
   * Sends an envelope to {@code to}: with Mailboxes.Send when the mailbox is on our home server
   * (the same pinned key), else through the home server's Forwarding service. Only the home
   * server is ever called.
   *
   * @param record what to keep in {@link SendLog} while a forwarded send waits for its outcome;
   *     null for control messages, whose outcome nobody waits for
   * @return whether the envelope was forwarded
   */
  private boolean deliver(MailboxAddress to, byte[] envelopeId, byte[] body, OutboxItem record) throws Refused {
    ServerAddress server = ServerAddress.parse(to.getServer());
    boolean forwarded = !ctx.isHome(server);
    String messageId = HexFormat.of().formatHex(envelopeId);
    if (forwarded && record != null) {
      try (LocalStore.Txn txn = ctx.store().begin()) {
        SendLog.sending(txn, record, false);
        txn.commit();
      }
    }
    SendRequest request = SendRequest.newBuilder()
        .setMailboxId(to.getMailboxId())
        .setSendCapability(to.getSendCapability())
        .setEnvelope(Envelope.newBuilder()
            .setId(ByteString.copyFrom(envelopeId))
            .setBody(ByteString.copyFrom(body)))
        .build();
    for (int attempt = 1; ; attempt++) {
      try {
        if (forwarded) {
          forwarder.forward(server, to, envelopeId, body);
        } else {
          ctx.mailboxes().send(request);
        }
        return forwarded;
      } catch (StatusRuntimeException e) {
        // A carrier that dies mid-call leaves us not knowing whether the server kept the
        // envelope. Sending the very same envelope again is safe: the recipient (or, for a
        // forward, the home server and then the recipient's) keeps one copy per envelope id.
        // Anything else is final.
        if (!ServerConnections.isConnectionLost(e) || attempt >= SEND_ATTEMPTS) {
          FerryException failure = forwarded ? forwarder.failure(server, e) : ctx.net().failure(server, e);
          forget(forwarded, record, messageId);
          // After a lost connection an earlier try may have been stored: only a refusal of the
          // first try proves that nothing was.
          if (attempt == 1 && isRefusal(e)) {
            throw new Refused(failure);
          }
          throw failure;
        }
      } catch (FerryException e) {
        // From the forwarding side, before anything left in this try: no verified routing key
        // (fail closed), or no forwarder mailbox.
        forget(forwarded, record, messageId);
        if (attempt == 1) {
          throw new Refused(e);
        }
        throw e;
      }
    }
  }

  private void forget(boolean forwarded, OutboxItem record, String messageId) {
    if (forwarded && record != null) {
      try (LocalStore.Txn txn = ctx.store().begin()) {
        SendLog.forget(txn, messageId);
        txn.commit();
      }
    }
  }

  private static byte[] sessionBytes(ProtocolStore protocol, SignalProtocolAddress address) {
    SessionRecord r = protocol.loadSession(address);
    return r == null ? null : r.serialize();
  }

  /**
   * Puts the session back as it was before a refused send, unless something else moved it
   * since (then the step stays used, which the contact tolerates).
   */
  private void rollBack(SignalProtocolAddress address, byte[] before, byte[] after) {
    if (before == null) {
      return;
    }
    try (LocalStore.Txn txn = ctx.store().begin()) {
      ProtocolStore protocol = ctx.protocol(txn);
      if (Arrays.equals(sessionBytes(protocol, address), after)) {
        try {
          protocol.storeSession(address, new SessionRecord(before));
        } catch (InvalidMessageException e) {
          throw new IllegalStateException("a session record just read is unreadable", e);
        }
        txn.commit();
      }
    }
  }

  /** Sends our reply address to an inviter, then marks the handshake done. */
  public void sendContactCard(String contactId) {
    ContactRecord contact;
    try (LocalStore.Txn txn = ctx.store().begin()) {
      contact = ContactBook.byId(txn, contactId)
          .orElseThrow(() -> new FerryException(FerryException.Reason.UNKNOWN_CONTACT, "contact is gone"));
    }
    ECPublicKey sealPublic;
    try {
      sealPublic = new ECPrivateKey(contact.getInbox().getSealPrivateKey().toByteArray()).publicKey();
    } catch (InvalidKeyException e) {
      throw new FerryException(FerryException.Reason.STORAGE, "stored seal key is unreadable", e);
    }
    MailboxAddress replyTo = MailboxAddress.newBuilder()
        .setServer(contact.getInbox().getServer())
        .setMailboxId(contact.getInbox().getMailboxId())
        .setSendCapability(contact.getInboxSendCapability())
        .setSealKey(ByteString.copyFrom(sealPublic.serialize()))
        .addAllBridges(ctx.routes().shareable(ServerAddress.parse(contact.getInbox().getServer()),
            InvitationCodec.MAX_BRIDGES).stream().map(BridgeLine::toString).toList())
        .build();
    send(contactId, Content.newBuilder()
        .setSentAt(ctx.clock().millis())
        .setContactCard(ContactCard.newBuilder().setReplyTo(replyTo))
        .build());
    try (LocalStore.Txn txn = ctx.store().begin()) {
      ContactBook.byId(txn, contactId)
          .ifPresent(c -> ContactBook.put(txn, c.toBuilder().setHandshakePending(false).build()));
      txn.commit();
    }
  }
}
