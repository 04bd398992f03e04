package org.ferry.sdk.internal.contacts;

import com.google.protobuf.InvalidProtocolBufferException;
import java.util.ArrayList;
import java.text.Normalizer;
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
  /**
   * Letters, digits and '.', '_', '-' of any script, with their combining marks (Mn, Mc: the
   * vowel signs of Devanagari, Tamil or Thai, Arabic harakat, accents), the joiners that
   * Persian and Indic names need between letters; not beginning with a mark, a joiner or '-'
   * (a label must not read as a command-line option).
   */
  private static final Pattern LABEL = Pattern.compile(
      "(?=.{1,64}$)[\\p{L}\\p{N}._](?:[\\p{L}\\p{N}\\p{Mn}\\p{Mc}._-]|[\\u200c\\u200d](?=[\\p{L}\\p{Mn}\\p{Mc}]))*");

  private ContactBook() {}

  /**
   * Checks that {@code label} is usable and not taken, and returns it in Unicode NFC, the form
   * labels are kept and compared in (so a decomposed "José" is the same label as the composed
   * one). Throws INVALID_LABEL otherwise.
   */
  public static String checkNewLabel(LocalStore.Txn txn, String label) {
    String normal = label == null ? null : normalize(label);
    if (normal == null || !LABEL.matcher(normal).matches()) {
      throw new FerryException(
          FerryException.Reason.INVALID_LABEL,
          "a label is 1 to 64 letters (with their marks), digits, '.', '_' or '-', and does not "
              + "begin with '-': '" + label + "'");
    }
    if (byLabel(txn, normal).isPresent()) {
      throw new FerryException(
          FerryException.Reason.INVALID_LABEL, "a contact named '" + normal + "' exists already");
    }
    return normal;
  }

  /** The form labels are kept and compared in: Unicode NFC. */
  public static String normalize(String label) {
    return Normalizer.normalize(label, Normalizer.Form.NFC);
  }

  public static List<ContactRecord> all(LocalStore.Txn txn) {
    List<ContactRecord> out = new ArrayList<>();
    for (byte[] v : txn.scan(PREFIX).values()) {
      out.add(parse(v));
    }
    return out;
  }

  public static Optional<ContactRecord> byLabel(LocalStore.Txn txn, String label) {
    String normal = normalize(label);
    return all(txn).stream().filter(c -> normalize(c.getLabel()).equals(normal)).findFirst();
  }

  public static ContactRecord require(LocalStore.Txn txn, String label) {
    return byLabel(txn, label)
        .orElseThrow(() -> new FerryException(
            FerryException.Reason.UNKNOWN_CONTACT, "no contact named '" + label + "'"));
  }

  public static Optional<ContactRecord> byId(LocalStore.Txn txn, String id) {
    return txn.get(PREFIX + id).map(ContactBook::parse);
  }

  /** As committed now, without waiting for a transaction: for readers that change nothing. */
  public static Optional<ContactRecord> byId(LocalStore store, String id) {
    return store.get(PREFIX + id).map(ContactBook::parse);
  }

  public static Optional<ContactRecord> byInbox(LocalStore.Txn txn, byte[] mailboxId) {
    return all(txn).stream()
        .filter(c -> Arrays.equals(c.getInbox().getMailboxId().toByteArray(), mailboxId))
        .findFirst();
  }

  /** The contact we send to at {@code mailboxId} (an accepted invitation's mailbox), if any. */
  public static Optional<ContactRecord> byOutbox(LocalStore.Txn txn, byte[] mailboxId) {
    return all(txn).stream()
        .filter(c -> c.hasOutbox() && Arrays.equals(c.getOutbox().getMailboxId().toByteArray(), mailboxId))
        .findFirst();
  }

  public static void delete(LocalStore.Txn txn, ContactRecord contact) {
    txn.delete(PREFIX + contact.getId());
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
