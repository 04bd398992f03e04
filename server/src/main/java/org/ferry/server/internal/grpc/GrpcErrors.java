package org.ferry.server.internal.grpc;

import io.grpc.Status;
import io.grpc.StatusRuntimeException;

/**
 * The one place statuses are made. Messages say what was wrong with the request so that a
 * client can act on it; they never echo secrets or ids back.
 */
public final class GrpcErrors {
  private GrpcErrors() {}

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

  public static StatusRuntimeException internal() {
    return Status.INTERNAL.withDescription("internal server error").asRuntimeException();
  }
}
