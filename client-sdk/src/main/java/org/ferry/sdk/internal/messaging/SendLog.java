package org.ferry.sdk.internal.messaging;

import com.google.protobuf.InvalidProtocolBufferException;
import com.google.rpc.Code;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.function.Supplier;
import org.ferry.proto.ErrorReasons;
import org.ferry.proto.ForwardOutcomes;
import org.ferry.proto.ServerAddress;
import org.ferry.proto.local.v1.FailedSend;
import org.ferry.proto.local.v1.ForwardedSend;
import org.ferry.proto.local.v1.OutboxItem;
import org.ferry.proto.v1.ForwardOutcome;
import org.ferry.sdk.FerryException;
import org.ferry.sdk.internal.federation.HomeForwarder;
import org.ferry.sdk.internal.store.LocalStore;

/**
 * What became of sends to contacts on other servers after our home server took them, and the
 * last {@value #MAX_FAILED} sends that failed.
 *
 * <p>A send to another server is recorded here ("forwarded") before it is handed to the home
 * server, so that its outcome, which the home server puts in our forwarder mailbox and which may
 * come back before the home server's answer does, always finds it. Once the home server holds
 * it, the outbox forgets the message and this record alone stands for it until its outcome:
 * delivered (the record goes), failed (it becomes a failure record), or "the destination no
 * longer holds that routing key" (the message goes back to the outbox, once, to be sealed to a
 * freshly fetched key). Each outcome is committed with the delivery that brought it, before it
 * is acknowledged.
 */
public final class SendLog {
  static final String FORWARDED = "forwarded/";
  static final String FAILED = "failed-send/";
  /** Failed sends kept for listing; older ones are forgotten: 300. */
  public static final int MAX_FAILED = 300;

  /** A send held by the home server (or being handed to it) for a contact on another server. */
  public record Forwarded(String messageId, String contactId, String destination, long queuedAt,
      long acceptedAt, boolean rekeyed, OutboxItem item) {}

  /** A send that will not be delivered, and why. */
  public record Failed(String messageId, String contactId, String destination, long queuedAt, long failedAt,
      FerryException.Reason reason, String message) {}

  /** What an outcome from the forwarder mailbox settled. */
  public record Settled(String contactId, String messageId, Optional<FerryException> failure) {}

  private SendLog() {}

  /** Records a send about to be handed to the home server, unless it is recorded already. */
  public static void sending(LocalStore.Txn txn, OutboxItem item, boolean rekeyed) {
    String id = HexFormat.of().formatHex(item.getEnvelopeId().toByteArray());
    if (txn.get(FORWARDED + id).isEmpty()) {
      txn.put(FORWARDED + id, encode(new Forwarded(id, item.getContactId(), item.getTo().getServer(),
          item.getQueuedAt(), 0, rekeyed, item.toBuilder().clearContent().build())));
    }
  }

  /** The home server holds the send since {@code at} (epoch ms), if its outcome has not come yet. */
  public static void held(LocalStore.Txn txn, String messageId, long at) {
    txn.get(FORWARDED + messageId).map(SendLog::decodeForwarded).ifPresent(f -> txn.put(FORWARDED + messageId,
        encode(new Forwarded(f.messageId(), f.contactId(), f.destination(), f.queuedAt(), at, f.rekeyed(), f.item()))));
  }

  /**
   * Forgets a send the home server did not take (refused, or the outcome is unknown), unless it
   * was sent back once for a fresh routing key: that mark stays while the outbox retries it.
   */
  public static void forget(LocalStore.Txn txn, String messageId) {
    Optional<Forwarded> f = txn.get(FORWARDED + messageId).map(SendLog::decodeForwarded);
    if (f.isPresent() && f.get().acceptedAt() == 0 && !f.get().rekeyed()) {
      txn.delete(FORWARDED + messageId);
    }
  }

  /** Records a failed send, forgetting the oldest beyond {@link #MAX_FAILED}. */
  public static void failed(LocalStore.Txn txn, Failed failure) {
    txn.delete(FORWARDED + failure.messageId());
    txn.put(FAILED + String.format("%020d", failure.failedAt()) + "/" + failure.messageId(), encode(failure));
    Map<String, byte[]> all = txn.scan(FAILED);
    int excess = all.size() - MAX_FAILED;
    for (String name : all.keySet()) {
      if (excess-- <= 0) {
        break;
      }
      txn.delete(name);
    }
  }

  /**
   * Takes one outcome from the forwarder mailbox, in {@code txn} (not committed).
   *
   * @param outboxName names a new outbox record, for a message to send again
   * @return what it settled; empty if it named no send recorded here (one settled before: a
   *     redelivery), or it sent the message back to the outbox
   */
  public static Optional<Settled> takeOutcome(LocalStore.Txn txn, byte[] body, long now, Supplier<String> outboxName) {
    ForwardOutcome outcome;
    try {
      outcome = ForwardOutcomes.fromBody(body);
    } catch (InvalidProtocolBufferException e) {
      return Optional.empty();
    }
    String id = HexFormat.of().formatHex(outcome.getItemId().toByteArray());
    Optional<Forwarded> found = txn.get(FORWARDED + id).map(SendLog::decodeForwarded);
    if (found.isEmpty()) {
      return Optional.empty();
    }
    Forwarded f = found.get();
    if (outcome.getResult() == ForwardOutcome.Result.DELIVERED) {
      txn.delete(FORWARDED + id);
      return Optional.of(new Settled(f.contactId(), id, Optional.empty()));
    }
    if (outcome.getReason().equals(ErrorReasons.UNKNOWN_ROUTING_KEY) && !f.rekeyed()) {
      // Sealed to a key the destination does not hold (any more): once more, to a fresh one.
      txn.put(outboxName.get(), f.item().toByteArray());
      txn.put(FORWARDED + id, encode(new Forwarded(id, f.contactId(), f.destination(), f.queuedAt(), 0, true, f.item())));
      try {
        txn.delete(HomeForwarder.routingKeyRecord(ServerAddress.parse(f.destination())));
      } catch (IllegalArgumentException e) {
        // Not an address: nothing kept under it.
      }
      return Optional.empty();
    }
    FerryException failure = failure(outcome, f.destination());
    failed(txn, new Failed(id, f.contactId(), f.destination(), f.queuedAt(), now, failure.reason(),
        failure.getMessage()));
    return Optional.of(new Settled(f.contactId(), id, Optional.of(failure)));
  }

  /** A FAILED outcome in words, naming the hop that failed. */
  static FerryException failure(ForwardOutcome outcome, String destination) {
    String server = hostPort(destination);
    String hop = outcome.getHop().equals("home") ? "our home server" : "server " + server;
    String said = outcome.getMessage().isEmpty() ? "" : ": " + outcome.getMessage();
    Code code = Code.forNumber(outcome.getCode());
    String reason = outcome.getReason();
    if (reason.equals(ErrorReasons.EXPIRED) || code == Code.DEADLINE_EXCEEDED) {
      return new FerryException(FerryException.Reason.EXPIRED,
          "not delivered: " + hop + " held the message, but server " + server
              + " did not accept it before its time to live ran out" + said);
    }
    if (reason.equals(ErrorReasons.PEER_REFUSED)) {
      return new FerryException(FerryException.Reason.PEER_REFUSED,
          "not delivered: " + hop + " refuses to federate" + (outcome.getHop().equals("home")
              ? " with server " + server : " with our home server") + said);
    }
    if (code == Code.NOT_FOUND) {
      return new FerryException(FerryException.Reason.REJECTED,
          "not delivered: " + hop + " says the contact's mailbox does not exist (any more)" + said);
    }
    if (code == Code.PERMISSION_DENIED) {
      return new FerryException(FerryException.Reason.REJECTED,
          "not delivered: " + hop + " says the contact's mailbox does not take our send capability" + said);
    }
    return new FerryException(FerryException.Reason.REJECTED,
        "not delivered: " + hop + " refused it (" + (code == null ? outcome.getCode() : code)
            + (reason.isEmpty() ? "" : ", " + reason) + ")" + said);
  }

  private static String hostPort(String address) {
    try {
      return ServerAddress.parse(address).hostPort();
    } catch (IllegalArgumentException e) {
      return "(unreadable address)";
    }
  }

  /** Sends held by the home server that wait for their outcome, oldest first. */
  public static List<Forwarded> held(LocalStore store) {
    List<Forwarded> out = new ArrayList<>();
    store.scan(FORWARDED).values().forEach(v -> out.add(decodeForwarded(v)));
    out.removeIf(f -> f.acceptedAt() == 0);
    out.sort(java.util.Comparator.comparingLong(Forwarded::acceptedAt));
    return out;
  }

  /** The failed sends kept, oldest first. */
  public static List<Failed> failures(LocalStore store) {
    List<Failed> out = new ArrayList<>();
    store.scan(FAILED).values().forEach(v -> out.add(decodeFailed(v)));
    return out;
  }

  private static byte[] encode(Forwarded f) {
    return ForwardedSend.newBuilder()
        .setMessageId(f.messageId())
        .setContactId(f.contactId())
        .setDestination(f.destination())
        .setQueuedAt(f.queuedAt())
        .setAcceptedAt(f.acceptedAt())
        .setRekeyed(f.rekeyed())
        .setItem(f.item())
        .build()
        .toByteArray();
  }

  private static Forwarded decodeForwarded(byte[] bytes) {
    ForwardedSend f = parse(() -> ForwardedSend.parseFrom(bytes));
    return new Forwarded(f.getMessageId(), f.getContactId(), f.getDestination(), f.getQueuedAt(),
        f.getAcceptedAt(), f.getRekeyed(), f.getItem());
  }

  private static byte[] encode(Failed f) {
    return FailedSend.newBuilder()
        .setMessageId(f.messageId())
        .setContactId(f.contactId())
        .setDestination(f.destination())
        .setQueuedAt(f.queuedAt())
        .setFailedAt(f.failedAt())
        .setReason(f.reason().name())
        .setMessage(f.message().length() > 2000 ? f.message().substring(0, 2000) : f.message())
        .build()
        .toByteArray();
  }

  private static Failed decodeFailed(byte[] bytes) {
    FailedSend f = parse(() -> FailedSend.parseFrom(bytes));
    FerryException.Reason reason;
    try {
      reason = FerryException.Reason.valueOf(f.getReason());
    } catch (IllegalArgumentException e) {
      reason = FerryException.Reason.REJECTED; // Written by a newer version.
    }
    return new Failed(f.getMessageId(), f.getContactId(), f.getDestination(), f.getQueuedAt(), f.getFailedAt(),
        reason, f.getMessage());
  }

  private interface Parser<T> {
    T parse() throws InvalidProtocolBufferException;
  }

  private static <T> T parse(Parser<T> parser) {
    try {
      return parser.parse();
    } catch (InvalidProtocolBufferException e) {
      throw new FerryException(FerryException.Reason.STORAGE, "a stored send record is unreadable", e);
    }
  }
}
