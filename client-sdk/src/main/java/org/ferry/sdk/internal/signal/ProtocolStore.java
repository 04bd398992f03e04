package org.ferry.sdk.internal.signal;

import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.UUID;
import org.ferry.sdk.internal.store.LocalStore;
import org.signal.libsignal.protocol.IdentityKey;
import org.signal.libsignal.protocol.IdentityKeyPair;
import org.signal.libsignal.protocol.InvalidKeyException;
import org.signal.libsignal.protocol.InvalidKeyIdException;
import org.signal.libsignal.protocol.InvalidMessageException;
import org.signal.libsignal.protocol.NoSessionException;
import org.signal.libsignal.protocol.SignalProtocolAddress;
import org.signal.libsignal.protocol.ecc.ECPublicKey;
import org.signal.libsignal.protocol.groups.state.SenderKeyRecord;
import org.signal.libsignal.protocol.state.KyberPreKeyRecord;
import org.signal.libsignal.protocol.state.PreKeyRecord;
import org.signal.libsignal.protocol.state.SessionRecord;
import org.signal.libsignal.protocol.state.SignalProtocolStore;
import org.signal.libsignal.protocol.state.SignedPreKeyRecord;

/**
 * libsignal's state, kept in one {@link LocalStore.Txn}: whatever a session step changes is
 * committed together with the rest of the operation, or not at all.
 *
 * <p>Identity keys are trusted on first use and then pinned: a changed key is not trusted in
 * either direction until the user verifies its safety number and {@link #trustNewIdentity}
 * pins it.
 */
public final class ProtocolStore implements SignalProtocolStore {
  private final LocalStore.Txn txn;
  private final IdentityKeyPair identity;
  private final int registrationId;

  public ProtocolStore(LocalStore.Txn txn, IdentityKeyPair identity, int registrationId) {
    this.txn = txn;
    this.identity = identity;
    this.registrationId = registrationId;
  }

  /** A libsignal record constructor: bytes in, record out. */
  @FunctionalInterface
  private interface Parser<T> {
    T parse(byte[] bytes) throws InvalidMessageException;
  }

  private static <T> T parse(byte[] bytes, Parser<T> parser, String what) {
    try {
      return parser.parse(bytes);
    } catch (InvalidMessageException e) {
      throw new IllegalStateException("stored " + what + " is unreadable", e);
    }
  }

  private static String addr(String kind, SignalProtocolAddress a) {
    return kind + "/" + a.getName() + "." + a.getDeviceId();
  }

  @Override
  public IdentityKeyPair getIdentityKeyPair() {
    return identity;
  }

  @Override
  public int getLocalRegistrationId() {
    return registrationId;
  }

  @Override
  public IdentityChange saveIdentity(SignalProtocolAddress address, IdentityKey key) {
    IdentityKey existing = getIdentity(address);
    txn.put("peer-identity/" + address.getName(), key.serialize());
    return existing != null && !existing.equals(key)
        ? IdentityChange.REPLACED_EXISTING
        : IdentityChange.NEW_OR_UNCHANGED;
  }

  @Override
  public boolean isTrustedIdentity(SignalProtocolAddress address, IdentityKey key, Direction direction) {
    IdentityKey existing = getIdentity(address);
    return existing == null || existing.equals(key);
  }

  @Override
  public IdentityKey getIdentity(SignalProtocolAddress address) {
    Optional<byte[]> v = txn.get("peer-identity/" + address.getName());
    if (v.isEmpty()) {
      return null;
    }
    try {
      return new IdentityKey(v.get());
    } catch (InvalidKeyException e) {
      throw new IllegalStateException("stored identity key is unreadable", e);
    }
  }

  @Override
  public SessionRecord loadSession(SignalProtocolAddress address) {
    Optional<byte[]> v = txn.get(addr("session", address));
    if (v.isEmpty()) {
      return null;
    }
    return parse(v.get(), SessionRecord::new, "session");
  }

  @Override
  public List<SessionRecord> loadExistingSessions(List<SignalProtocolAddress> addresses)
      throws NoSessionException {
    List<SessionRecord> out = new ArrayList<>();
    for (SignalProtocolAddress a : addresses) {
      SessionRecord r = loadSession(a);
      if (r == null) {
        throw new NoSessionException("no session for " + a);
      }
      out.add(r);
    }
    return out;
  }

  @Override
  public List<Integer> getSubDeviceSessions(String name) {
    // One device per contact for now; multi-device comes with linked devices.
    return List.of();
  }

  @Override
  public void storeSession(SignalProtocolAddress address, SessionRecord record) {
    txn.put(addr("session", address), record.serialize());
  }

  @Override
  public boolean containsSession(SignalProtocolAddress address) {
    return txn.get(addr("session", address)).isPresent();
  }

  @Override
  public void deleteSession(SignalProtocolAddress address) {
    txn.delete(addr("session", address));
  }

  @Override
  public void deleteAllSessions(String name) {
    txn.scan("session/" + name + ".").keySet().forEach(txn::delete);
  }

  /**
   * Pins {@code key} as the contact's identity key in place of the one pinned before, once the
   * user has verified its safety number, and drops the contact's sessions: they were made under
   * the old key, and a new one is started under this one.
   */
  public void trustNewIdentity(SignalProtocolAddress address, IdentityKey key) {
    txn.put("peer-identity/" + address.getName(), key.serialize());
    deleteSession(address);
    deleteAllSessions(address.getName());
  }

  /** Forgets everything kept about a contact: its sessions and its identity key. */
  public void forget(String name) {
    deleteAllSessions(name);
    txn.delete("peer-identity/" + name);
  }

  @Override
  public PreKeyRecord loadPreKey(int id) throws InvalidKeyIdException {
    byte[] v = txn.get("prekey/" + id).orElseThrow(() -> new InvalidKeyIdException("no prekey " + id));
    return parse(v, PreKeyRecord::new, "prekey");
  }

  @Override
  public void storePreKey(int id, PreKeyRecord record) {
    txn.put("prekey/" + id, record.serialize());
  }

  @Override
  public boolean containsPreKey(int id) {
    return txn.get("prekey/" + id).isPresent();
  }

  @Override
  public void removePreKey(int id) {
    txn.delete("prekey/" + id);
  }

  @Override
  public SignedPreKeyRecord loadSignedPreKey(int id) throws InvalidKeyIdException {
    byte[] v = txn.get("signed-prekey/" + id)
        .orElseThrow(() -> new InvalidKeyIdException("no signed prekey " + id));
    return parse(v, SignedPreKeyRecord::new, "signed prekey");
  }

  @Override
  public List<SignedPreKeyRecord> loadSignedPreKeys() {
    List<SignedPreKeyRecord> out = new ArrayList<>();
    for (byte[] v : txn.scan("signed-prekey/").values()) {
      out.add(parse(v, SignedPreKeyRecord::new, "signed prekey"));
    }
    return out;
  }

  @Override
  public void storeSignedPreKey(int id, SignedPreKeyRecord record) {
    txn.put("signed-prekey/" + id, record.serialize());
  }

  @Override
  public boolean containsSignedPreKey(int id) {
    return txn.get("signed-prekey/" + id).isPresent();
  }

  @Override
  public void removeSignedPreKey(int id) {
    txn.delete("signed-prekey/" + id);
  }

  @Override
  public KyberPreKeyRecord loadKyberPreKey(int id) throws InvalidKeyIdException {
    byte[] v = txn.get("kyber-prekey/" + id)
        .orElseThrow(() -> new InvalidKeyIdException("no kyber prekey " + id));
    return parse(v, KyberPreKeyRecord::new, "kyber prekey");
  }

  @Override
  public List<KyberPreKeyRecord> loadKyberPreKeys() {
    List<KyberPreKeyRecord> out = new ArrayList<>();
    for (byte[] v : txn.scan("kyber-prekey/").values()) {
      out.add(parse(v, KyberPreKeyRecord::new, "kyber prekey"));
    }
    return out;
  }

  @Override
  public void storeKyberPreKey(int id, KyberPreKeyRecord record) {
    txn.put("kyber-prekey/" + id, record.serialize());
  }

  @Override
  public boolean containsKyberPreKey(int id) {
    return txn.get("kyber-prekey/" + id).isPresent();
  }

  /** Every Kyber prekey here is made for one invitation, so it is used once, then gone. */
  @Override
  public void markKyberPreKeyUsed(int id, int signedPreKeyId, ECPublicKey baseKey) {
    txn.delete("kyber-prekey/" + id);
  }

  @Override
  public void storeSenderKey(SignalProtocolAddress sender, UUID distributionId, SenderKeyRecord record) {
    txn.put(addr("sender-key", sender) + "/" + distributionId, record.serialize());
  }

  @Override
  public SenderKeyRecord loadSenderKey(SignalProtocolAddress sender, UUID distributionId) {
    Optional<byte[]> v = txn.get(addr("sender-key", sender) + "/" + distributionId);
    if (v.isEmpty()) {
      return null;
    }
    return parse(v.get(), SenderKeyRecord::new, "sender key");
  }
}
