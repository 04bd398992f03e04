package org.ferry.server.internal.grpc;

import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import org.ferry.proto.ErrorReasons;
import org.ferry.server.internal.store.StoreException;
import org.ferry.ops.log.OneLineLogs;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The one place statuses are made. Messages say what was wrong with the request so that a
 * client can act on it; they never echo secrets or ids back.
 */
public final class GrpcErrors {
  private static final Logger log = LoggerFactory.getLogger(GrpcErrors.class);

  private GrpcErrors() {}

  /**
   * What to end a call with: a {@link StatusRuntimeException} as it is, trailers (error
   * reasons) included; a store that is out of disk space RESOURCE_EXHAUSTED (SERVER_FULL);
   * anything else is a bug, logged once here with {@code where}, and reaches
   * the client as INTERNAL without details.
   */
  public static StatusRuntimeException toStatusException(Throwable e, String where) {
    if (e instanceof StatusRuntimeException s) {
      return s;
    }
    if (e instanceof StoreException s && s.diskFull()) {
      // Logged once by the store's disk watch, not per call.
      return ErrorReasons.withReason(Status.Code.RESOURCE_EXHAUSTED, ErrorReasons.SERVER_FULL,
          "the server's disk is full; try again later");
    }
    log.error("{} failed: {}", where, OneLineLogs.describe(e));
    return Status.INTERNAL.withDescription("internal server error").asRuntimeException();
  }

  public static StatusRuntimeException invalidArgument(String format, Object... args) {
    return Status.INVALID_ARGUMENT.withDescription(String.format(format, args)).asRuntimeException();
  }

  public static StatusRuntimeException notFound(String message) {
    return Status.NOT_FOUND.withDescription(message).asRuntimeException();
  }

  public static StatusRuntimeException permissionDenied(String message) {
    return Status.PERMISSION_DENIED.withDescription(message).asRuntimeException();
  }

  public static StatusRuntimeException unauthenticated(String message) {
    return Status.UNAUTHENTICATED.withDescription(message).asRuntimeException();
  }

  public static StatusRuntimeException failedPrecondition(String message) {
    return Status.FAILED_PRECONDITION.withDescription(message).asRuntimeException();
  }
}
