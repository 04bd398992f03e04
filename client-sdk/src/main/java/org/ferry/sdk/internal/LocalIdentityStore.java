package org.ferry.sdk.internal;

import com.google.protobuf.InvalidProtocolBufferException;
import java.util.Optional;
import org.ferry.proto.local.v1.LocalIdentity;
import org.ferry.sdk.FerryException;
import org.ferry.sdk.internal.store.LocalStore;

/** The one record holding our identity key pair, registration id and home server. */
public final class LocalIdentityStore {
  public static final String NAME = "identity";

  private LocalIdentityStore() {}

  public static Optional<LocalIdentity> load(LocalStore.Txn txn) {
    return txn.get(NAME).map(LocalIdentityStore::parse);
  }

  public static LocalIdentity require(LocalStore.Txn txn) {
    return load(txn).orElseThrow(() -> new FerryException(
        FerryException.Reason.NOT_INITIALIZED, "not initialised: run init with a server address first"));
  }

  public static void put(LocalStore.Txn txn, LocalIdentity identity) {
    txn.put(NAME, identity.toByteArray());
  }

  private static LocalIdentity parse(byte[] v) {
    try {
      return LocalIdentity.parseFrom(v);
    } catch (InvalidProtocolBufferException e) {
      throw new FerryException(FerryException.Reason.STORAGE, "the stored identity is unreadable", e);
    }
  }
}
