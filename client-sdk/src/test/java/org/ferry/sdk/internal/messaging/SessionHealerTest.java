package org.ferry.sdk.internal.messaging;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Clock;
import java.time.Instant;
import java.time.ZoneOffset;
import org.ferry.proto.local.v1.ContactRecord;
import org.ferry.proto.local.v1.LocalIdentity;
import org.ferry.proto.v1.SessionResetRequest;
import org.ferry.sdk.internal.ClientContext;
import org.ferry.sdk.internal.LocalIdentityStore;
import org.ferry.sdk.internal.signal.FreshPreKeys;
import org.ferry.sdk.internal.store.LocalStore;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.signal.libsignal.protocol.IdentityKey;
import org.signal.libsignal.protocol.IdentityKeyPair;

/** Who can make us restart a session: only the contact, under the identity key we pinned. */
class SessionHealerTest {
  @TempDir Path dir;

  private final IdentityKeyPair me = IdentityKeyPair.generate();
  private final IdentityKeyPair bob = IdentityKeyPair.generate();
  private final IdentityKeyPair mallory = IdentityKeyPair.generate();
  private final ContactRecord contact = ContactRecord.newBuilder()
      .setId("0123456789abcdef")
      .setLabel("bob")
      .setState(ContactRecord.State.ESTABLISHED)
      .build();
  private LocalStore store;
  private SessionHealer healer;
  private ClientContext ctx;

  @BeforeEach
  void setUp() {
    store = LocalStore.open(dir, new byte[32]);
    ctx = new ClientContext(store, null, Clock.fixed(Instant.parse("2026-01-01T00:00:00Z"), ZoneOffset.UTC),
        new SecureRandom());
    healer = new SessionHealer(ctx, null);
    try (LocalStore.Txn txn = store.begin()) {
      LocalIdentityStore.put(txn, LocalIdentity.newBuilder()
          .setIdentityKeyPair(ByteString.copyFrom(me.serialize()))
          .setRegistrationId(7)
          .build());
      ctx.protocol(txn).saveIdentity(ClientContext.address(contact), bob.getPublicKey());
      txn.commit();
    }
  }

  @AfterEach
  void tearDown() {
    store.close();
  }

  private static SessionResetRequest offer(IdentityKeyPair from, IdentityKey to, long requestedAt) {
    return SessionHealer.signedOffer(from, 9, FreshPreKeys.generate(from, 11, 12, 13, 1), to, requestedAt);
  }

  /** Takes {@code request} for {@code from}; commits what it changed and returns the outcome. */
  private SessionHealer.Taken take(ContactRecord from, SessionResetRequest request, ContactRecord.Builder updated) {
    try (LocalStore.Txn txn = store.begin()) {
      SessionHealer.Taken taken = healer.take(txn, from, updated, request.toByteArray());
      txn.commit();
      return taken;
    }
  }

  private boolean hasSession() {
    try (LocalStore.Txn txn = store.begin()) {
      return ctx.protocol(txn).containsSession(ClientContext.address(contact));
    }
  }

  @Test
  void anOfferSignedByThePinnedIdentityRestartsTheSessionOnceAndItsReplayChangesNothing() {
    ContactRecord.Builder updated = contact.toBuilder();
    assertEquals(SessionHealer.Taken.RESTARTED, take(contact, offer(bob, me.getPublicKey(), 1000), updated));
    assertTrue(hasSession());
    assertTrue(updated.getResetReplyPending(), "our answer is due");
    assertEquals(1000, updated.getLastResetTaken());
    ContactRecord after = updated.build();
    assertEquals(SessionHealer.Taken.STALE, take(after, offer(bob, me.getPublicKey(), 1000), after.toBuilder()));
    assertEquals(SessionHealer.Taken.STALE, take(after, offer(bob, me.getPublicKey(), 999), after.toBuilder()));
  }

  @Test
  void anOfferUnderAnotherIdentityIsAnIdentityChangeThatLeavesTheNewKeyPendingAndStartsNoSession() {
    ContactRecord.Builder updated = contact.toBuilder().setVerified(true);
    assertEquals(SessionHealer.Taken.IDENTITY_CHANGED,
        take(contact, offer(mallory, me.getPublicKey(), 1000), updated));
    assertEquals(ByteString.copyFrom(mallory.getPublicKey().serialize()), updated.getPendingIdentityKey());
    assertFalse(updated.getVerified(), "a verification was of the old key");
    assertFalse(hasSession());
    try (LocalStore.Txn txn = store.begin()) {
      assertEquals(bob.getPublicKey(), ctx.protocol(txn).getIdentity(ClientContext.address(contact)),
          "the pinned identity stays");
    }
  }

  @Test
  void anOfferWithThePinnedKeyButAnotherSignatureIsRefused() {
    SessionResetRequest forged = resigned(offer(bob, me.getPublicKey(), 1000), mallory);
    assertEquals(SessionHealer.Taken.UNREADABLE, take(contact, forged, contact.toBuilder()));
    assertFalse(hasSession());
  }

  @Test
  void anOfferUnderAnotherIdentityNotSignedByItIsRefusedAndLeavesNothingPending() {
    SessionResetRequest forged = resigned(offer(mallory, me.getPublicKey(), 1000), bob);
    ContactRecord.Builder updated = contact.toBuilder();
    assertEquals(SessionHealer.Taken.UNREADABLE, take(contact, forged, updated));
    assertTrue(updated.getPendingIdentityKey().isEmpty());
  }

  @Test
  void anOfferMeantForSomeoneElseIsRefused() {
    assertEquals(SessionHealer.Taken.UNREADABLE,
        take(contact, offer(bob, mallory.getPublicKey(), 1000), contact.toBuilder()));
    assertFalse(hasSession());
  }

  @Test
  void anOfferFromAContactWhoHasNotAcceptedYetIsRefused() {
    ContactRecord invited = contact.toBuilder().setState(ContactRecord.State.INVITED).build();
    assertEquals(SessionHealer.Taken.UNREADABLE,
        take(invited, offer(bob, me.getPublicKey(), 1000), invited.toBuilder()));
    assertFalse(hasSession());
  }

  /** {@code genuine} with its offer signed by {@code signer} instead. */
  private static SessionResetRequest resigned(SessionResetRequest genuine, IdentityKeyPair signer) {
    byte[] signed = concat("ferry.v1.session-reset".getBytes(StandardCharsets.US_ASCII), genuine.getOffer().toByteArray());
    return genuine.toBuilder()
        .setSignature(ByteString.copyFrom(signer.getPrivateKey().calculateSignature(signed)))
        .build();
  }

  private static byte[] concat(byte[] a, byte[] b) {
    byte[] out = new byte[a.length + b.length];
    System.arraycopy(a, 0, out, 0, a.length);
    System.arraycopy(b, 0, out, a.length, b.length);
    return out;
  }
}
