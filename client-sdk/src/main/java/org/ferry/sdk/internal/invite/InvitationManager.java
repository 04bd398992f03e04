package org.ferry.sdk.internal.invite;

import com.google.protobuf.ByteString;
import com.google.protobuf.InvalidProtocolBufferException;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.Map;
import java.util.Optional;
import javax.crypto.AEADBadTagException;
import org.ferry.proto.ErrorReasons;
import org.ferry.proto.ServerAddress;
import org.ferry.proto.local.v1.ContactRecord;
import org.ferry.proto.local.v1.LocalIdentity;
import org.ferry.proto.local.v1.OwnedMailbox;
import org.ferry.proto.local.v1.PendingAcceptance;
import org.ferry.proto.v1.InvitationBundle;
import org.ferry.proto.v1.MailboxAddress;
import org.ferry.proto.v1.PutInvitationRequest;
import org.ferry.proto.v1.TakeInvitationRequest;
import org.ferry.sdk.FerryException;
import org.ferry.sdk.Invitation;
import org.ferry.sdk.internal.ClientContext;
import org.ferry.sdk.internal.LocalIdentityStore;
import org.ferry.sdk.internal.contacts.ContactBook;
import org.ferry.sdk.internal.crypto.AesGcm;
import org.ferry.sdk.internal.crypto.Kdf;
import org.ferry.sdk.internal.federation.HomeForwarder;
import org.ferry.proto.OwnerKeys;
import org.ferry.sdk.internal.signal.FreshPreKeys;
import org.ferry.sdk.internal.store.LocalStore;
import org.signal.libsignal.protocol.IdentityKey;
import org.signal.libsignal.protocol.IdentityKeyPair;
import org.signal.libsignal.protocol.InvalidKeyException;
import org.signal.libsignal.protocol.SessionBuilder;
import org.signal.libsignal.protocol.UntrustedIdentityException;
import org.signal.libsignal.protocol.ecc.ECPrivateKey;
import org.signal.libsignal.protocol.ecc.ECPublicKey;
import org.signal.libsignal.protocol.kem.KEMPublicKey;
import org.signal.libsignal.protocol.state.PreKeyBundle;

/**
 * Making and accepting one-time invitations.
 *
 * <p>Inviting: a fresh mailbox whose send capability derives from the invitation secret, a
 * fresh set of prekeys (signed, Kyber, one-time), and the bundle, encrypted under a key that
 * derives from the same secret, left on our server. Accepting: our own fresh mailbox, the
 * bundle (taken, so nobody else can), a PQXDH session from it, and our contact card as the
 * first message.
 */
public final class InvitationManager {
  private static final org.slf4j.Logger log = org.slf4j.LoggerFactory.getLogger(InvitationManager.class);
  private static final String BUNDLE_AAD = "ferry.v1.invite.bundle";
  private static final int MAX_PRE_KEY_ID = 0xFFFFFF;

  private final ClientContext ctx;
  private final HomeForwarder forwarder;

  public InvitationManager(ClientContext ctx, HomeForwarder forwarder) {
    this.ctx = ctx;
    this.forwarder = forwarder;
  }

  public Invitation create(String givenLabel, Duration validity) {
    String label;
    LocalIdentity local;
    int base;
    try (LocalStore.Txn txn = ctx.store().begin()) {
      label = ContactBook.checkNewLabel(txn, givenLabel);
      // Three prekey ids per invitation, cycling within libsignal's 24-bit range; taken now, so
      // that invitations made at the same time never share one.
      local = LocalIdentityStore.require(txn);
      base = Integer.remainderUnsigned(local.getNextPreKeyId(), MAX_PRE_KEY_ID - 3) + 1;
      local = local.toBuilder().setNextPreKeyId(base + 3).build();
      LocalIdentityStore.put(txn, local);
      txn.commit();
    }
    ServerAddress home = ServerAddress.parse(local.getHomeServer());
    Instant expiresAt = ctx.clock().instant().plus(validity).truncatedTo(java.time.temporal.ChronoUnit.SECONDS);
    byte[] secret = ctx.randomBytes(32);
    OwnedMailbox inbox = ctx.createMailbox(InvitationCodec.sendCapabilityOf(secret));
    byte[] mailboxId = inbox.getMailboxId().toByteArray();
    InvitationCodec.Parsed invitation =
        new InvitationCodec.Parsed(home, mailboxId, secret, expiresAt, ctx.routes().shareable(home, InvitationCodec.MAX_BRIDGES));

    IdentityKeyPair identity = ClientContext.keyPair(local);
    long now = ctx.clock().millis();
    FreshPreKeys keys = FreshPreKeys.generate(identity, base, base + 1, base + 2, now);
    ECPublicKey sealPublic;
    try {
      sealPublic = new ECPrivateKey(inbox.getSealPrivateKey().toByteArray()).publicKey();
    } catch (InvalidKeyException e) {
      throw new IllegalStateException("fresh seal key is unreadable", e);
    }
    InvitationBundle bundle = keys.bundle(identity, local.getRegistrationId(), ClientContext.DEVICE_ID)
        .setSealKey(ByteString.copyFrom(sealPublic.serialize()))
        .build();
    byte[] blob = AesGcm.encrypt(invitation.bundleKey(), bundle.toByteArray(), bundleAad(mailboxId));
    byte[] fetchTokenHash = Kdf.sha256(invitation.fetchToken());
    int ttl = (int) Math.max(1, Duration.between(ctx.clock().instant(), expiresAt).toSeconds());
    byte[] signature = OwnerKeys.sign(
        OwnerKeys.privateKey(inbox.getOwnerPrivateKey().toByteArray()),
        OwnerKeys.PUT_INVITATION_CONTEXT,
        mailboxId, fetchTokenHash, Kdf.sha256(blob), ByteBuffer.allocate(4).putInt(ttl).array());
    try {
      ctx.invitations().putInvitation(PutInvitationRequest.newBuilder()
          .setMailboxId(inbox.getMailboxId())
          .setFetchTokenHash(ByteString.copyFrom(fetchTokenHash))
          .setBlob(ByteString.copyFrom(blob))
          .setTtlSeconds(ttl)
          .setSignature(ByteString.copyFrom(signature))
          .build());
    } catch (StatusRuntimeException e) {
      throw ctx.net().failure(home, e);
    }

    try (LocalStore.Txn txn = ctx.store().begin()) {
      // Another invitation or acceptance may have taken the label meanwhile.
      ContactBook.checkNewLabel(txn, label);
      keys.storeIn(ctx.protocol(txn));
      ContactBook.put(txn, ContactRecord.newBuilder()
          .setId(newContactId())
          .setLabel(label)
          .setState(ContactRecord.State.INVITED)
          .setInbox(inbox)
          .setInboxSendCapability(ByteString.copyFrom(invitation.sendCapability()))
          .setInvitationExpiresAt(expiresAt.getEpochSecond())
          .setCreatedAt(ctx.clock().instant().getEpochSecond())
          .build());
      txn.commit();
    }
    return new Invitation(label, InvitationCodec.encode(invitation), expiresAt);
  }

  /**
   * Accepts an invitation. Returns the new contact's id; the caller sends the contact card
   * (see {@code MessageSender#sendContactCard}).
   *
   * <p>An acceptance can be tried again after any network failure: what each try achieved (our
   * mailbox for the contact, the take id, the bundle once fetched) is kept in the local store
   * until the acceptance is finished, and the inviter's server hands the bundle again to the
   * same take id for {@link #TAKE_GRACE} after the first take, in case that answer was lost. A
   * try that fails for good (used, expired, not known, tampered with) deletes the mailbox it
   * made. Acceptances run one at a time.
   */
  public synchronized String accept(String uri, String givenLabel) {
    InvitationCodec.Parsed invitation = InvitationCodec.parse(uri);
    String label;
    Optional<Map.Entry<String, PendingAcceptance>> earlier;
    try (LocalStore.Txn txn = ctx.store().begin()) {
      Optional<ContactRecord> accepted = ContactBook.byOutbox(txn, invitation.mailboxId());
      if (accepted.isPresent()) {
        throw new FerryException(FerryException.Reason.ALREADY_ACCEPTED,
            "you accepted this invitation already: the contact is '" + accepted.get().getLabel() + "'");
      }
      if (ContactBook.byInbox(txn, invitation.mailboxId()).isPresent()) {
        throw new FerryException(
            FerryException.Reason.INVALID_INVITATION, "this is one of your own invitations");
      }
      label = ContactBook.checkNewLabel(txn, givenLabel);
      earlier = pending(txn, invitation.mailboxId());
    }
    String name = earlier.map(Map.Entry::getKey).orElseGet(() -> PENDING + newContactId());
    PendingAcceptance state = earlier.map(Map.Entry::getValue).orElseGet(() -> PendingAcceptance.newBuilder()
        .setTakeId(ByteString.copyFrom(ctx.randomBytes(16)))
        .setInvitationMailboxId(ByteString.copyFrom(invitation.mailboxId()))
        .setStartedAt(ctx.clock().instant().getEpochSecond())
        .build());
    if (!ctx.clock().instant().isBefore(invitation.expiresAt())) {
      abandon(name, state);
      throw new FerryException(
          FerryException.Reason.INVITATION_EXPIRED,
          "this invitation expired at " + invitation.expiresAt() + "; ask for a new one");
    }
    // The inviter's bridge lines are kept even if what follows fails: they are how to reach
    // that server from here, whatever becomes of this invitation.
    ctx.routes().addBridges(invitation.server(), invitation.bridges(), true);
    save(name, state);
    // Our mailbox first: if our server is unreachable, the invitation stays unused.
    if (!state.hasInbox()) {
      byte[] capability = ctx.randomBytes(32);
      state = state.toBuilder()
          .setInbox(ctx.createMailbox(capability))
          .setInboxSendCapability(ByteString.copyFrom(capability))
          .build();
      save(name, state);
    }
    if (state.getBlob().isEmpty()) {
      state = state.toBuilder().setBlob(ByteString.copyFrom(take(invitation, name, state, earlier.isPresent()))).build();
      save(name, state);
    }
    InvitationBundle bundle;
    try {
      bundle = InvitationBundle.parseFrom(
          AesGcm.decrypt(invitation.bundleKey(), state.getBlob().toByteArray(), bundleAad(invitation.mailboxId())));
    } catch (AEADBadTagException | InvalidProtocolBufferException e) {
      abandon(name, state);
      throw new FerryException(
          FerryException.Reason.INVALID_INVITATION, "the invitation's bundle does not decrypt: it was tampered with", e);
    }

    String contactId = newContactId();
    ContactRecord contact = ContactRecord.newBuilder()
        .setId(contactId)
        .setLabel(label)
        .setState(ContactRecord.State.ESTABLISHED)
        .setInbox(state.getInbox())
        .setInboxSendCapability(state.getInboxSendCapability())
        .setOutbox(MailboxAddress.newBuilder()
            .setServer(invitation.server().toString())
            .setMailboxId(ByteString.copyFrom(invitation.mailboxId()))
            .setSendCapability(ByteString.copyFrom(invitation.sendCapability()))
            .setSealKey(bundle.getSealKey()))
        .setHandshakePending(true)
        .setCreatedAt(ctx.clock().instant().getEpochSecond())
        .build();
    try (LocalStore.Txn txn = ctx.store().begin()) {
      // An invitation made meanwhile may have taken the label: the acceptance stays pending.
      ContactBook.checkNewLabel(txn, label);
      new SessionBuilder(ctx.protocol(txn), ClientContext.address(contact))
          .process(preKeyBundle(bundle), ctx.clock().instant());
      new ECPublicKey(bundle.getSealKey().toByteArray());
      ContactBook.put(txn, contact);
      txn.delete(name);
      txn.commit();
    } catch (InvalidKeyException | UntrustedIdentityException e) {
      abandon(name, state);
      throw new FerryException(
          FerryException.Reason.INVALID_INVITATION, "the invitation's keys are invalid: " + e.getMessage(), e);
    }
    return contactId;
  }

  /** How long the inviter's server hands the bundle to the same taker again. */
  static final Duration TAKE_GRACE = Duration.ofMinutes(10);
  private static final String PENDING = "accepting/";

  private static Optional<Map.Entry<String, PendingAcceptance>> pending(LocalStore.Txn txn, byte[] invitationMailbox) {
    for (Map.Entry<String, byte[]> e : txn.scan(PENDING).entrySet()) {
      PendingAcceptance p;
      try {
        p = PendingAcceptance.parseFrom(e.getValue());
      } catch (InvalidProtocolBufferException ex) {
        throw new FerryException(FerryException.Reason.STORAGE, "a stored acceptance is unreadable", ex);
      }
      if (Arrays.equals(p.getInvitationMailboxId().toByteArray(), invitationMailbox)) {
        return Optional.of(Map.entry(e.getKey(), p));
      }
    }
    return Optional.empty();
  }

  private void save(String name, PendingAcceptance state) {
    try (LocalStore.Txn txn = ctx.store().begin()) {
      txn.put(name, state.toByteArray());
      txn.commit();
    }
  }

  /** Forgets an acceptance that failed for good, and deletes the mailbox it made (best effort). */
  private void abandon(String name, PendingAcceptance state) {
    if (state.hasInbox()) {
      try {
        ctx.deleteMailbox(state.getInbox());
      } catch (FerryException e) {
        log.info("could not delete the mailbox of a failed acceptance ({}); the server lets it expire", e.reason());
      }
    }
    try (LocalStore.Txn txn = ctx.store().begin()) {
      txn.delete(name);
      txn.commit();
    }
  }

  /**
   * The request id of a take through the home server: 16 bytes that look random to it, derived
   * from the take id (random, kept with the acceptance), so that every retry of this take gives
   * the same one and the take id itself stays sealed for the inviter's server.
   */
  static byte[] forwardRequestId(byte[] takeId) {
    return Kdf.derive(takeId, "ferry.v1.forward-take-request", 16);
  }

  /**
   * Takes the invitation's bundle: from the home server if the invitation is on it, else
   * through the home server's Forwarding service (never over a connection to the inviter's
   * server).
   */
  private byte[] take(InvitationCodec.Parsed invitation, String name, PendingAcceptance state, boolean retry) {
    boolean forwarded = !ctx.isHome(invitation.server());
    try {
      if (forwarded) {
        byte[] takeId = state.getTakeId().toByteArray();
        return forwarder.take(invitation.server(), invitation.mailboxId(), invitation.fetchToken(), takeId,
            forwardRequestId(takeId));
      }
      return ctx.invitations()
          .takeInvitation(TakeInvitationRequest.newBuilder()
              .setMailboxId(ByteString.copyFrom(invitation.mailboxId()))
              .setFetchToken(ByteString.copyFrom(invitation.fetchToken()))
              .setTakeId(state.getTakeId())
              .build())
          .getBlob()
          .toByteArray();
    } catch (StatusRuntimeException e) {
      String reason = ErrorReasons.of(e).orElse("");
      Status.Code code = e.getStatus().getCode();
      FerryException definite = null;
      if (reason.equals(ErrorReasons.INVITATION_USED)) {
        definite = new FerryException(FerryException.Reason.INVITATION_USED, retry
            ? "this invitation was already used; if not by an earlier try of yours more than "
                + TAKE_GRACE.toMinutes() + " minutes ago, it may have been intercepted: tell its sender"
            : "this invitation was already used; if not by you, it may have been intercepted: tell its sender", e);
      } else if (reason.equals(ErrorReasons.INVITATION_EXPIRED)) {
        definite = new FerryException(FerryException.Reason.INVITATION_EXPIRED, "this invitation expired; ask for a new one", e);
      } else if (code == Status.Code.NOT_FOUND || code == Status.Code.PERMISSION_DENIED) {
        definite = new FerryException(FerryException.Reason.INVALID_INVITATION,
            "the inviter's server does not know this invitation", e);
      }
      if (definite != null) {
        abandon(name, state);
        throw definite;
      }
      FerryException failure = forwarded
          ? forwarder.failure(invitation.server(), e) : ctx.net().failure(invitation.server(), e);
      throw new FerryException(failure.reason(), failure.getMessage()
          + "; accept again to retry: the invitation stays yours for " + TAKE_GRACE.toMinutes()
          + " minutes even if the server handed it out", e);
    }
  }

  /** The libsignal bundle an invitation (or a session reset offer) carries. */
  public static PreKeyBundle preKeyBundle(InvitationBundle b) throws InvalidKeyException {
    return new PreKeyBundle(
        b.getRegistrationId(),
        b.getDeviceId(),
        b.getPreKeyId(),
        new ECPublicKey(b.getPreKey().toByteArray()),
        b.getSignedPreKeyId(),
        new ECPublicKey(b.getSignedPreKey().toByteArray()),
        b.getSignedPreKeySignature().toByteArray(),
        new IdentityKey(b.getIdentityKey().toByteArray()),
        b.getKyberPreKeyId(),
        new KEMPublicKey(b.getKyberPreKey().toByteArray()),
        b.getKyberPreKeySignature().toByteArray());
  }

  private static byte[] bundleAad(byte[] mailboxId) {
    byte[] label = BUNDLE_AAD.getBytes(StandardCharsets.US_ASCII);
    return ByteBuffer.allocate(label.length + mailboxId.length).put(label).put(mailboxId).array();
  }

  private String newContactId() {
    return HexFormat.of().formatHex(ctx.randomBytes(16));
  }
}
