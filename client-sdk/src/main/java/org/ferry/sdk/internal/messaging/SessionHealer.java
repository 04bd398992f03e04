package org.ferry.sdk.internal.messaging;

import com.google.protobuf.ByteString;
import com.google.protobuf.InvalidProtocolBufferException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.Predicate;
import java.util.function.UnaryOperator;
import org.ferry.proto.local.v1.ContactRecord;
import org.ferry.proto.local.v1.LocalIdentity;
import org.ferry.proto.v1.Content;
import org.ferry.proto.v1.SessionResetOffer;
import org.ferry.proto.v1.SessionResetRequest;
import org.ferry.proto.v1.SessionRestarted;
import org.ferry.sdk.FerryException;
import org.ferry.sdk.internal.ClientContext;
import org.ferry.sdk.internal.contacts.ContactBook;
import org.ferry.sdk.internal.invite.InvitationManager;
import org.ferry.sdk.internal.signal.FreshPreKeys;
import org.ferry.sdk.internal.signal.ProtocolStore;
import org.ferry.sdk.internal.store.LocalStore;
import org.signal.libsignal.protocol.IdentityKey;
import org.signal.libsignal.protocol.IdentityKeyPair;
import org.signal.libsignal.protocol.InvalidKeyException;
import org.signal.libsignal.protocol.SessionBuilder;
import org.signal.libsignal.protocol.UntrustedIdentityException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Restarts a session that fell out of step (a data directory restored from a copy, a send
 * whose ratchet steps were lost beyond what libsignal skips).
 *
 * <p>The side that cannot decrypt asks: it sends a {@link SessionResetRequest} with fresh
 * prekeys (signed, Kyber, one-time), signed by its identity key, sealed to the contact's
 * mailbox like any envelope but outside the broken session. The contact checks that the offer
 * is signed by the identity key it has pinned, is meant for its own identity key, and is newer
 * than any offer it took before; then it runs PQXDH from the offer (libsignal checks the
 * prekey signatures and the pinned identity again) and answers with
 * {@link SessionRestarted} as the first message of the new session. Both sides tell their
 * user that messages may have been lost.
 *
 * <p>Healing never changes whom a contact is: an offer under another identity key is refused
 * and reported as an identity change; the key is kept as pending until the user verifies its
 * safety number ({@code FerryClient.verify}), which pins it and restarts the session with
 * {@link #restartUnderNewIdentity}. Requests and answers that cannot go out now (the network
 * is down, the mailbox is full) are flagged in the contact record and sent with the next
 * receive or send.
 */
public final class SessionHealer {
  private static final Logger log = LoggerFactory.getLogger(SessionHealer.class);
  /** Envelope type of a {@link SessionResetRequest}; libsignal's own types are below 10. */
  public static final int RESET_TYPE = 100;
  /** While a request is outstanding, further failures ask again only after this long: 1 hour. */
  static final Duration ASK_AGAIN_AFTER = Duration.ofHours(1);
  private static final byte[] SIGNATURE_CONTEXT = "ferry.v1.session-reset".getBytes(StandardCharsets.US_ASCII);
  private static final int MAX_PRE_KEY_ID = 0xFFFFFF;

  private final ClientContext ctx;
  private final MessageSender sender;
  /** Per contact id: held while that contact's restart messages go out. */
  private final java.util.concurrent.ConcurrentMap<String, Object> flushing = new java.util.concurrent.ConcurrentHashMap<>();

  public SessionHealer(ClientContext ctx, MessageSender sender) {
    this.ctx = ctx;
    this.sender = sender;
  }

  /**
   * After a decryption failure from {@code contact}: flags a reset request, unless the contact
   * has no session yet, or within {@link #ASK_AGAIN_AFTER} one of ours is unanswered or we
   * restarted from theirs and have not heard from them since (their messages sent on the old
   * session before our answer reached them fail then, and another restart would not help).
   */
  static ContactRecord.Builder wantReset(ContactRecord.Builder contact, Instant now) {
    if (contact.getState() != ContactRecord.State.ESTABLISHED || !contact.hasOutbox()) {
      return contact;
    }
    if (recent(contact.getResetRequestedAt(), now) || recent(contact.getRestartedAt(), now)) {
      return contact;
    }
    return contact.setResetRequestPending(true);
  }

  private static boolean recent(long at, Instant now) {
    return at != 0 && at <= now.toEpochMilli() && now.toEpochMilli() - at < ASK_AGAIN_AFTER.toMillis();
  }

  /** What taking an offer came to. */
  enum Taken { RESTARTED, IDENTITY_CHANGED, UNREADABLE, STALE }

  /**
   * Takes a reset request from {@code contact}, in {@code txn} (not committed here): on
   * {@link Taken#RESTARTED} the new session is in {@code txn} and {@code updated} says that our
   * answer is due. On {@link Taken#IDENTITY_CHANGED} (a well-formed offer for us, signed by the
   * identity key it carries, which is not the one pinned) {@code updated} holds that key as
   * pending, for the user to verify; nothing else changes.
   */
  Taken take(LocalStore.Txn txn, ContactRecord contact, ContactRecord.Builder updated, byte[] payload) {
    SessionResetOffer offer;
    SessionResetRequest request;
    IdentityKey offered;
    try {
      request = SessionResetRequest.parseFrom(payload);
      offer = SessionResetOffer.parseFrom(request.getOffer());
      offered = new IdentityKey(offer.getBundle().getIdentityKey().toByteArray());
    } catch (InvalidProtocolBufferException | InvalidKeyException e) {
      return Taken.UNREADABLE;
    }
    ProtocolStore protocol = ctx.protocol(txn);
    IdentityKey pinned = protocol.getIdentity(ClientContext.address(contact));
    if (pinned == null || contact.getState() != ContactRecord.State.ESTABLISHED) {
      return Taken.UNREADABLE;
    }
    // Signed by the key it carries and meant for us: only then is it news about the contact's key.
    byte[] signed = concat(SIGNATURE_CONTEXT, request.getOffer().toByteArray());
    if (!offered.getPublicKey().verifySignature(signed, request.getSignature().toByteArray())
        || !Arrays.equals(offer.getRecipientIdentityKey().toByteArray(),
            protocol.getIdentityKeyPair().getPublicKey().serialize())) {
      return Taken.UNREADABLE;
    }
    if (!pinned.equals(offered)) {
      updated.setPendingIdentityKey(ByteString.copyFrom(offered.serialize())).setVerified(false);
      return Taken.IDENTITY_CHANGED;
    }
    if (offer.getRequestedAt() <= contact.getLastResetTaken()) {
      return Taken.STALE;
    }
    try {
      new SessionBuilder(protocol, ClientContext.address(contact))
          .process(InvitationManager.preKeyBundle(offer.getBundle()), ctx.clock().instant());
    } catch (UntrustedIdentityException e) {
      // The offered key is the pinned one (checked above): libsignal agrees or the store changed.
      return Taken.UNREADABLE;
    } catch (InvalidKeyException e) {
      return Taken.UNREADABLE;
    }
    updated.setLastResetTaken(offer.getRequestedAt())
        .setResetReplyPending(true)
        .setResetRequestPending(false)
        .setRestartedAt(ctx.clock().millis());
    return Taken.RESTARTED;
  }

  /**
   * Pins {@code key}, the contact's pending identity key whose safety number the user has just
   * verified, in {@code txn} (committed by the caller): drops the sessions made under the old
   * key, clears the pending key, marks the contact verified and flags a reset request under the
   * new key (a fresh PQXDH key agreement, as for a session out of step), which the next
   * {@link #flush} sends. An answer still due on the old session is dropped: it could not be
   * read under the new key.
   */
  public ContactRecord restartUnderNewIdentity(LocalStore.Txn txn, ContactRecord contact, IdentityKey key) {
    ctx.protocol(txn).trustNewIdentity(ClientContext.address(contact), key);
    ContactRecord updated = contact.toBuilder()
        .clearPendingIdentityKey()
        .setVerified(true)
        .setResetRequestPending(true)
        .setResetReplyPending(false)
        .setRestartedAt(0)
        .build();
    ContactBook.put(txn, updated);
    return updated;
  }

  /**
   * Sends what is due for the contacts {@code which} selects: our answers to their offers
   * first, then our own requests. What cannot go out now stays flagged for the next call.
   */
  public void flush(Predicate<ContactRecord> which) {
    List<ContactRecord> due = new ArrayList<>();
    try (LocalStore.Txn txn = ctx.store().begin()) {
      for (ContactRecord c : ContactBook.all(txn)) {
        // Nothing goes to a contact whose new identity key waits for the user's verification.
        if ((c.getResetReplyPending() || c.getResetRequestPending()) && c.getPendingIdentityKey().isEmpty()
            && which.test(c)) {
          due.add(c);
        }
      }
    }
    for (ContactRecord listed : due) {
      // One flush per contact at a time (a send and the receive loop may both call): the
      // second finds the flags cleared by the first.
      Object lock = flushing.computeIfAbsent(listed.getId(), id -> new Object());
      synchronized (lock) {
        ContactRecord c;
        try (LocalStore.Txn txn = ctx.store().begin()) {
          c = ContactBook.byId(txn, listed.getId()).orElse(null);
        }
        if (c == null) {
          continue;
        }
        try {
          if (c.getResetReplyPending()) {
            answer(c);
          }
          if (c.getResetRequestPending()) {
            request(c);
          }
        } catch (FerryException e) {
          log.info("could not send a session restart now; trying again later: {}", e.getMessage());
        }
      }
    }
  }


  private void answer(ContactRecord c) {
    sender.send(c.getId(), Content.newBuilder()
        .setSentAt(ctx.clock().millis())
        .setSessionRestarted(SessionRestarted.newBuilder().setRequestedAt(c.getLastResetTaken()))
        .build());
    update(c.getId(), b -> b.setResetReplyPending(false));
  }

  private void request(ContactRecord c) {
    LocalIdentity local = ctx.identity();
    IdentityKeyPair identity = ClientContext.keyPair(local);
    IdentityKey theirs;
    List<Integer> ids;
    try (LocalStore.Txn txn = ctx.store().begin()) {
      theirs = ctx.protocol(txn).getIdentity(ClientContext.address(c));
      ids = freeIds(ctx.protocol(txn));
    }
    if (theirs == null) {
      update(c.getId(), b -> b.setResetRequestPending(false));
      return;
    }
    long now = ctx.clock().millis();
    FreshPreKeys keys = FreshPreKeys.generate(identity, ids.get(0), ids.get(1), ids.get(2), now);
    // Never earlier than an offer we made before, even if the clock went back.
    long requestedAt = Math.max(now, c.getResetRequestedAt() + 1);
    SessionResetRequest request = signedOffer(
        identity, local.getRegistrationId(), keys, theirs, requestedAt);
    sender.sendSealed(c.getId(), RESET_TYPE, request.toByteArray());
    // The prekeys are kept only once the request is out, so failed tries leave nothing behind.
    try (LocalStore.Txn txn = ctx.store().begin()) {
      keys.storeIn(ctx.protocol(txn));
      ContactBook.byId(txn, c.getId()).ifPresent(current -> ContactBook.put(txn,
          current.toBuilder().setResetRequestPending(false).setResetRequestedAt(requestedAt).build()));
      txn.commit();
    }
  }

  /** A reset request: {@code keys}' bundle for {@code recipient}, signed by {@code identity}. */
  static SessionResetRequest signedOffer(
      IdentityKeyPair identity, int registrationId, FreshPreKeys keys, IdentityKey recipient, long requestedAt) {
    byte[] offer = SessionResetOffer.newBuilder()
        .setBundle(keys.bundle(identity, registrationId, ClientContext.DEVICE_ID))
        .setRecipientIdentityKey(ByteString.copyFrom(recipient.serialize()))
        .setRequestedAt(requestedAt)
        .build()
        .toByteArray();
    return SessionResetRequest.newBuilder()
        .setOffer(ByteString.copyFrom(offer))
        .setSignature(ByteString.copyFrom(
            identity.getPrivateKey().calculateSignature(concat(SIGNATURE_CONTEXT, offer))))
        .build();
  }

  /**
   * Three prekey ids not in use. Random rather than counted, so that a data directory restored
   * from a copy (whose counter went back) does not hand out an id a second time.
   */
  private List<Integer> freeIds(ProtocolStore store) {
    List<Integer> ids = new ArrayList<>();
    while (ids.size() < 3) {
      int id = 1 + ctx.random().nextInt(MAX_PRE_KEY_ID);
      if (!ids.contains(id) && !store.containsSignedPreKey(id) && !store.containsKyberPreKey(id)
          && !store.containsPreKey(id)) {
        ids.add(id);
      }
    }
    return ids;
  }

  private void update(String contactId, UnaryOperator<ContactRecord.Builder> change) {
    try (LocalStore.Txn txn = ctx.store().begin()) {
      ContactBook.byId(txn, contactId)
          .ifPresent(current -> ContactBook.put(txn, change.apply(current.toBuilder()).build()));
      txn.commit();
    }
  }

  private static byte[] concat(byte[] a, byte[] b) {
    byte[] out = new byte[a.length + b.length];
    System.arraycopy(a, 0, out, 0, a.length);
    System.arraycopy(b, 0, out, a.length, b.length);
    return out;
  }
}
