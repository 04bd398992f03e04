package org.ferry.sdk.internal.signal;

import com.google.protobuf.ByteString;
import org.ferry.proto.v1.InvitationBundle;
import org.signal.libsignal.protocol.IdentityKeyPair;
import org.signal.libsignal.protocol.ecc.ECKeyPair;
import org.signal.libsignal.protocol.ecc.ECPublicKey;
import org.signal.libsignal.protocol.kem.KEMKeyPair;
import org.signal.libsignal.protocol.kem.KEMKeyType;
import org.signal.libsignal.protocol.kem.KEMPublicKey;
import org.signal.libsignal.protocol.state.KyberPreKeyRecord;
import org.signal.libsignal.protocol.state.PreKeyRecord;
import org.signal.libsignal.protocol.state.SignedPreKeyRecord;

/**
 * One set of fresh prekeys for a PQXDH session someone else starts: a signed X25519 prekey, a
 * signed Kyber-1024 prekey (both signed by our identity key) and a one-time X25519 prekey, as
 * invitations and session restarts hand them out.
 */
public record FreshPreKeys(
    SignedPreKeyRecord signed,
    ECPublicKey signedPublic,
    KyberPreKeyRecord kyber,
    KEMPublicKey kyberPublic,
    PreKeyRecord oneTime,
    ECPublicKey oneTimePublic) {

  /** Generates the keys under the given ids; {@code nowMillis} is their creation time. */
  public static FreshPreKeys generate(
      IdentityKeyPair identity, int signedId, int kyberId, int oneTimeId, long nowMillis) {
    ECKeyPair signed = ECKeyPair.generate();
    KEMKeyPair kyber = KEMKeyPair.generate(KEMKeyType.KYBER_1024);
    ECKeyPair oneTime = ECKeyPair.generate();
    return new FreshPreKeys(
        new SignedPreKeyRecord(signedId, nowMillis, signed,
            identity.getPrivateKey().calculateSignature(signed.getPublicKey().serialize())),
        signed.getPublicKey(),
        new KyberPreKeyRecord(kyberId, nowMillis, kyber,
            identity.getPrivateKey().calculateSignature(kyber.getPublicKey().serialize())),
        kyber.getPublicKey(),
        new PreKeyRecord(oneTimeId, oneTime),
        oneTime.getPublicKey());
  }

  /** The public halves with our identity, as a bundle (no seal key). */
  public InvitationBundle.Builder bundle(IdentityKeyPair identity, int registrationId, int deviceId) {
    return InvitationBundle.newBuilder()
        .setIdentityKey(ByteString.copyFrom(identity.getPublicKey().serialize()))
        .setRegistrationId(registrationId)
        .setDeviceId(deviceId)
        .setPreKeyId(oneTime.getId())
        .setPreKey(ByteString.copyFrom(oneTimePublic.serialize()))
        .setSignedPreKeyId(signed.getId())
        .setSignedPreKey(ByteString.copyFrom(signedPublic.serialize()))
        .setSignedPreKeySignature(ByteString.copyFrom(signed.getSignature()))
        .setKyberPreKeyId(kyber.getId())
        .setKyberPreKey(ByteString.copyFrom(kyberPublic.serialize()))
        .setKyberPreKeySignature(ByteString.copyFrom(kyber.getSignature()));
  }

  /** Keeps the private halves, for the session that uses them. */
  public void storeIn(ProtocolStore store) {
    store.storeSignedPreKey(signed.getId(), signed);
    store.storeKyberPreKey(kyber.getId(), kyber);
    store.storePreKey(oneTime.getId(), oneTime);
  }
}
