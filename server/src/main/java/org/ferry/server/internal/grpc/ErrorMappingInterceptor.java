package org.ferry.server.internal.grpc;

import io.grpc.ForwardingServerCallListener;
import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.StatusRuntimeException;

/**
 * Turns exceptions that escape a service into a status: a {@link StatusRuntimeException}
 * keeps its status; anything else is logged once here and becomes INTERNAL, without details.
 */
public final class ErrorMappingInterceptor implements ServerInterceptor {
  @Override
  public <Q, R> ServerCall.Listener<Q> interceptCall(
      ServerCall<Q, R> call, Metadata headers, ServerCallHandler<Q, R> next) {
    ServerCall.Listener<Q> delegate = next.startCall(call, headers);
    return new ForwardingServerCallListener.SimpleForwardingServerCallListener<>(delegate) {
      @Override
      public void onMessage(Q message) {
        guard(() -> super.onMessage(message));
      }

      @Override
      public void onHalfClose() {
        guard(super::onHalfClose);
      }

      @Override
      public void onReady() {
        guard(super::onReady);
      }

      private void guard(Runnable r) {
        try {
          r.run();
        } catch (RuntimeException e) {
          closeQuietly(GrpcErrors.toStatusException(e, call.getMethodDescriptor().getFullMethodName()));
        }
      }

      private void closeQuietly(StatusRuntimeException failure) {
        Metadata trailers = failure.getTrailers();
        try {
          call.close(failure.getStatus(), trailers != null ? trailers : new Metadata());
        } catch (IllegalStateException alreadyClosed) {
          // The service closed the call before failing; nothing left to tell the client.
        }
      }
    };
  }
}
