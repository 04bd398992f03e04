package org.ferry.sdk.internal.contacts;

import com.google.protobuf.InvalidProtocolBufferException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;
import java.util.regex.Pattern;
import org.ferry.proto.local.v1.ContactRecord;
import org.ferry.sdk.FerryException;
import org.ferry.sdk.internal.store.LocalStore;

/** Contact records in the local store, named {@code contact/<random id>}. */
public final class ContactBook {
  private static final String PREFIX = "contact/";
  private static final Pattern LABEL = Pattern.compile("[\\p{L}\\p{N}._-]{1,64}");

  private ContactBook() {}

  /** Checks that {@code label} is usable and not taken; throws INVALID_LABEL otherwise. */
  public static void checkNewLabel(LocalStore.Txn txn, String label) {
    if (label == null || !LABEL.matcher(label).matches()) {
      throw new FerryException(
          FerryException.Reason.INVALID_LABEL,
          "a label is 1 to 64 letters, digits, '.', '_' or '-': '" + label + "'");
    }
    if (byLabel(txn, label).isPresent()) {
      throw new FerryException(
          FerryException.Reason.INVALID_LABEL, "a contact named '" + label + "' exists already");
    }
  }

  public static List<ContactRecord> all(LocalStore.Txn txn) {
    List<ContactRecord> out = new ArrayList<>();
    for (byte[] v : txn.scan(PREFIX).values()) {
      out.add(parse(v));
    }
    return out;
  }

  public static Optional<ContactRecord> byLabel(LocalStore.Txn txn, String label) {
    return all(txn).stream().filter(c -> c.getLabel().equals(label)).findFirst();
  }

  public static ContactRecord require(LocalStore.Txn txn, String label) {
    return byLabel(txn, label)
        .orElseThrow(() -> new FerryException(
            FerryException.Reason.UNKNOWN_CONTACT, "no contact named '" + label + "'"));
  }

  public static Optional<ContactRecord> byId(LocalStore.Txn txn, String id) {
    return txn.get(PREFIX + id).map(ContactBook::parse);
  }

  public static Optional<ContactRecord> byInbox(LocalStore.Txn txn, byte[] mailboxId) {
    return all(txn).stream()
        .filter(c -> Arrays.equals(c.getInbox().getMailboxId().toByteArray(), mailboxId))
        .findFirst();
  }

  public static void put(LocalStore.Txn txn, ContactRecord contact) {
    txn.put(PREFIX + contact.getId(), contact.toByteArray());
  }

  private static ContactRecord parse(byte[] v) {
    try {
      return ContactRecord.parseFrom(v);
    } catch (InvalidProtocolBufferException e) {
      throw new FerryException(FerryException.Reason.STORAGE, "a stored contact is unreadable", e);
    }
  }
}
