package org.ferry.proto;

import com.google.protobuf.Any;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.rpc.ErrorInfo;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.protobuf.StatusProto;
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

  private ErrorReasons() {}

  /** A status exception with {@code message} for people and {@code reason} for programs. */
  public static StatusRuntimeException withReason(Status.Code code, String reason, String message) {
    return StatusProto.toStatusRuntimeException(com.google.rpc.Status.newBuilder()
        .setCode(code.value())
        .setMessage(message)
        .addDetails(Any.pack(ErrorInfo.newBuilder().setDomain(DOMAIN).setReason(reason).build()))
        .build());
  }

  /** The Ferry reason a failed call carries, if any. */
  public static Optional<String> of(Throwable failure) {
    com.google.rpc.Status status = StatusProto.fromThrowable(failure);
    if (status == null) {
      return Optional.empty();
    }
    for (Any detail : status.getDetailsList()) {
      if (detail.is(ErrorInfo.class)) {
        try {
          ErrorInfo info = detail.unpack(ErrorInfo.class);
          if (DOMAIN.equals(info.getDomain())) {
            return Optional.of(info.getReason());
          }
        } catch (InvalidProtocolBufferException e) {
          return Optional.empty();
        }
      }
    }
    return Optional.empty();
  }
}
