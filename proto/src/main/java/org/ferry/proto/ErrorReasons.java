package org.ferry.proto;

import com.google.protobuf.Any;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.Message;
import com.google.rpc.ErrorInfo;
import com.google.rpc.RetryInfo;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.protobuf.StatusProto;
import java.time.Duration;
import java.util.Optional;

/**
 * Reasons a client can act on, carried with a status as a {@code google.rpc.ErrorInfo} detail
 * (domain {@value #DOMAIN}), so clients never have to read the human-readable description.
 */
public final class ErrorReasons {
  public static final String DOMAIN = "ferry.v1";
  /** TakeInvitation, NOT_FOUND: somebody took this invitation already. */
  public static final String INVITATION_USED = "INVITATION_USED";
  /** TakeInvitation, NOT_FOUND: the invitation ran out. */
  public static final String INVITATION_EXPIRED = "INVITATION_EXPIRED";
  /** Send, RESOURCE_EXHAUSTED: the recipient's mailbox holds as much as its server allows. */
  public static final String MAILBOX_FULL = "MAILBOX_FULL";
  /** Send, RESOURCE_EXHAUSTED: the server's storage budget is used up. */
  public static final String SERVER_FULL = "SERVER_FULL";
  /** CreateMailbox, RESOURCE_EXHAUSTED: too many mailboxes made lately; RetryInfo says when. */
  public static final String RATE_LIMITED = "RATE_LIMITED";
  /** CreateMailbox, UNAUTHENTICATED: this server needs its operator's creation token. */
  public static final String CREATION_TOKEN_REQUIRED = "CREATION_TOKEN_REQUIRED";
  /** Federation, a forwarded item's outcome (DEADLINE_EXCEEDED): its ttl ran out before the
   * destination server accepted it. */
  public static final String EXPIRED = "EXPIRED";
  /** Forward, Deliver, FAILED_PRECONDITION or PERMISSION_DENIED: a server's peer policy refuses
   * to federate with the other server (denylist, allowlist, federation off). */
  public static final String PEER_REFUSED = "PEER_REFUSED";
  /** Deliver, FAILED_PRECONDITION: the routing part names a routing key id the destination does
   * not hold (any more): fetch its routing key again. */
  public static final String UNKNOWN_ROUTING_KEY = "UNKNOWN_ROUTING_KEY";
  /** Forward, RESOURCE_EXHAUSTED: the home server's queue for that destination is full. */
  public static final String PEER_QUEUE_FULL = "PEER_QUEUE_FULL";

  private ErrorReasons() {}

  /** A status exception with {@code message} for people and {@code reason} for programs. */
  public static StatusRuntimeException withReason(Status.Code code, String reason, String message) {
    return StatusProto.toStatusRuntimeException(status(code, reason, message).build());
  }

  /** As {@link #withReason(Status.Code, String, String)}, with a {@code RetryInfo} delay. */
  public static StatusRuntimeException withRetry(
      Status.Code code, String reason, String message, Duration retryAfter) {
    RetryInfo retry = RetryInfo.newBuilder()
        .setRetryDelay(com.google.protobuf.Duration.newBuilder()
            .setSeconds(retryAfter.getSeconds())
            .setNanos(retryAfter.getNano()))
        .build();
    return StatusProto.toStatusRuntimeException(
        status(code, reason, message).addDetails(Any.pack(retry)).build());
  }

  private static com.google.rpc.Status.Builder status(Status.Code code, String reason, String message) {
    return com.google.rpc.Status.newBuilder()
        .setCode(code.value())
        .setMessage(message)
        .addDetails(Any.pack(ErrorInfo.newBuilder().setDomain(DOMAIN).setReason(reason).build()));
  }

  /** The Ferry reason a failed call carries, if any. */
  public static Optional<String> of(Throwable failure) {
    return detail(failure, ErrorInfo.class)
        .filter(info -> DOMAIN.equals(info.getDomain()))
        .map(ErrorInfo::getReason);
  }

  /** The retry delay a failed call carries, if any. */
  public static Optional<Duration> retryAfter(Throwable failure) {
    return detail(failure, RetryInfo.class)
        .map(RetryInfo::getRetryDelay)
        .map(d -> Duration.ofSeconds(d.getSeconds(), d.getNanos()));
  }

  private static <T extends Message> Optional<T> detail(Throwable failure, Class<T> type) {
    com.google.rpc.Status status = StatusProto.fromThrowable(failure);
    if (status == null) {
      return Optional.empty();
    }
    for (Any detail : status.getDetailsList()) {
      if (detail.is(type)) {
        try {
          return Optional.of(detail.unpack(type));
        } catch (InvalidProtocolBufferException e) {
          return Optional.empty();
        }
      }
    }
    return Optional.empty();
  }
}
