package org.ferry.sdk.internal.messaging;

import com.google.protobuf.ByteString;
import io.grpc.StatusRuntimeException;
import org.ferry.proto.BridgeLine;
import org.ferry.proto.ServerAddress;
import org.ferry.proto.local.v1.ContactRecord;
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
import org.ferry.sdk.internal.net.ServerConnections;
import org.ferry.sdk.internal.store.LocalStore;
import org.signal.libsignal.protocol.InvalidKeyException;
import org.signal.libsignal.protocol.NoSessionException;
import org.signal.libsignal.protocol.SessionCipher;
import org.signal.libsignal.protocol.UntrustedIdentityException;
import org.signal.libsignal.protocol.ecc.ECPrivateKey;
import org.signal.libsignal.protocol.ecc.ECPublicKey;
import org.signal.libsignal.protocol.message.CiphertextMessage;

/**
 * Encrypts content for a contact, seals and pads it, and hands it to the contact's server.
 *
 * <p>The ratchet step is committed before the envelope leaves. If the send then fails, the
 * message is not sent and the caller is told; the contact's session simply skips that message
 * key, which the Double Ratchet tolerates. Nothing is queued for a later retry, so a retry by
 * the user can never produce a second copy.
 */
public final class MessageSender {
  /** Tries of one envelope when the connection drops under it. */
  static final int SEND_ATTEMPTS = 3;

  private final ClientContext ctx;

  public MessageSender(ClientContext ctx) {
    this.ctx = ctx;
  }

  /** Sends {@code content} to the contact with id {@code contactId}; returns the envelope id. */
  public byte[] send(String contactId, Content content) {
    byte[] envelopeId = ctx.randomBytes(16);
    MailboxAddress to;
    byte[] body;
    try (LocalStore.Txn txn = ctx.store().begin()) {
      ContactRecord contact = ContactBook.byId(txn, contactId)
          .orElseThrow(() -> new FerryException(FerryException.Reason.UNKNOWN_CONTACT, "contact is gone"));
      if (!contact.hasOutbox()) {
        throw new FerryException(
            FerryException.Reason.CONTACT_NOT_READY,
            "'" + contact.getLabel() + "' has not answered the invitation yet; run receive first");
      }
      to = contact.getOutbox();
      SessionCipher cipher = new SessionCipher(ctx.protocol(txn), ClientContext.address(contact));
      CiphertextMessage message;
      try {
        message = cipher.encrypt(content.toByteArray(), ctx.clock().instant());
      } catch (UntrustedIdentityException e) {
        throw new FerryException(
            FerryException.Reason.IDENTITY_CHANGED,
            "the safety number of '" + contact.getLabel() + "' changed; verify it before sending", e);
      } catch (NoSessionException e) {
        throw new FerryException(
            FerryException.Reason.CONTACT_NOT_READY, "no session with '" + contact.getLabel() + "'", e);
      }
      byte[] serialized = message.serialize();
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
      body = EnvelopeSealer.seal(sealKey, to.getMailboxId().toByteArray(), message.getType(), serialized);
      txn.commit();
    }
    ServerAddress server = ServerAddress.parse(to.getServer());
    SendRequest request = SendRequest.newBuilder()
        .setMailboxId(to.getMailboxId())
        .setSendCapability(to.getSendCapability())
        .setEnvelope(Envelope.newBuilder()
            .setId(ByteString.copyFrom(envelopeId))
            .setBody(ByteString.copyFrom(body)))
        .build();
    for (int attempt = 1; ; attempt++) {
      try {
        ctx.mailboxes(server).send(request);
        return envelopeId;
      } catch (StatusRuntimeException e) {
        // A carrier that dies mid-call leaves us not knowing whether the server kept the
        // envelope. Sending the very same envelope again is safe: the recipient keeps one copy
        // per envelope id. Anything else is final.
        if (!ServerConnections.isConnectionLost(e) || attempt >= SEND_ATTEMPTS) {
          throw ctx.net().failure(server, e);
        }
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
