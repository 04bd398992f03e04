package org.ferry.server.internal.grpc;

import io.grpc.StatusRuntimeException;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import java.util.concurrent.CompletableFuture;
import java.util.function.Function;
import org.ferry.proto.ErrorReasons;
import org.ferry.proto.v1.SendRequest;
import org.ferry.proto.v1.SendStreamRequest;
import org.ferry.proto.v1.SendStreamResponse;

/**
 * One client's stream of sends: each request is checked and written like a unary Send, and
 * answered with its own result once durable or refused. At most {@link #MAX_IN_FLIGHT} requests
 * are in flight: inbound flow control asks the transport for one more request per answer.
 */
final class SendStream implements StreamObserver<SendStreamRequest> {
  /** Requests of one stream read but not yet answered, at most. */
  static final int MAX_IN_FLIGHT = 1024;

  private final Function<SendRequest, CompletableFuture<Void>> accept;
  private final ServerCallStreamObserver<SendStreamResponse> out;
  private int inFlight;
  private boolean halfClosed;
  private boolean done;

  SendStream(Function<SendRequest, CompletableFuture<Void>> accept, ServerCallStreamObserver<SendStreamResponse> out) {
    this.accept = accept;
    this.out = out;
  }

  void start() {
    out.disableAutoRequest();
    out.setOnCancelHandler(() -> {
      synchronized (this) {
        done = true;
      }
    });
    out.request(MAX_IN_FLIGHT);
  }

  @Override
  public void onNext(SendStreamRequest request) {
    synchronized (this) {
      inFlight++;
    }
    long id = request.getRequestId();
    try {
      accept.apply(request.getSend())
          .whenComplete((ok, failure) -> answer(id, failure == null ? null : MailboxGrpcService.unwrap(failure)));
    } catch (RuntimeException refused) {
      answer(id, refused);
    }
  }

  private synchronized void answer(long id, Throwable failure) {
    inFlight--;
    if (done) {
      return;
    }
    SendStreamResponse.Builder r = SendStreamResponse.newBuilder().setRequestId(id);
    if (failure != null) {
      StatusRuntimeException status = GrpcErrors.toStatusException(failure, "send");
      r.setCode(status.getStatus().getCode().value())
          .setMessage(java.util.Objects.toString(status.getStatus().getDescription(), ""))
          .setReason(ErrorReasons.of(status).orElse(""));
    }
    out.onNext(r.build());
    if (halfClosed && inFlight == 0) {
      done = true;
      out.onCompleted();
    } else {
      out.request(1);
    }
  }

  @Override
  public synchronized void onError(Throwable t) {
    done = true;
  }

  @Override
  public synchronized void onCompleted() {
    halfClosed = true;
    if (inFlight == 0 && !done) {
      done = true;
      out.onCompleted();
    }
  }
}
