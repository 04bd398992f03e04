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
 * answered with its own result once durable or refused. Inbound flow control bounds what one
 * stream holds: at most {@link #MAX_IN_FLIGHT} requests read and not yet answered, holding at most
 * about {@link #MAX_IN_FLIGHT_BYTES} of envelope bodies, with {@link #READ_AHEAD} more asked of the
 * transport; beyond that the client's requests wait in its own HTTP/2 window.
 */
final class SendStream implements StreamObserver<SendStreamRequest> {
  /** Requests of one stream read but not yet answered, at most. */
  static final int MAX_IN_FLIGHT = 1024;
  /** Body bytes of requests read but not yet answered above which no more are asked for: 4 MiB. */
  static final long MAX_IN_FLIGHT_BYTES = 4L << 20;
  /** Requests asked of the transport ahead of those read. */
  static final int READ_AHEAD = 32;

  private final Function<SendRequest, CompletableFuture<Void>> accept;
  private final ServerCallStreamObserver<SendStreamResponse> out;
  private int inFlight;
  private long inFlightBytes;
  /** Requests asked of the transport and not yet read. */
  private int asked;
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
    synchronized (this) {
      askMore();
    }
  }

  /** Keeps {@link #READ_AHEAD} requests asked for while the stream holds less than its bounds. */
  private void askMore() {
    if (done || halfClosed || inFlightBytes >= MAX_IN_FLIGHT_BYTES) {
      return;
    }
    int more = Math.min(READ_AHEAD - asked, MAX_IN_FLIGHT - inFlight - asked);
    if (more > 0) {
      asked += more;
      out.request(more);
    }
  }

  @Override
  public void onNext(SendStreamRequest request) {
    int size = request.getSend().getEnvelope().getBody().size();
    synchronized (this) {
      asked--;
      inFlight++;
      inFlightBytes += size;
      askMore();
    }
    long id = request.getRequestId();
    try {
      accept.apply(request.getSend())
          .whenComplete((ok, failure) ->
              answer(id, size, failure == null ? null : MailboxGrpcService.unwrap(failure)));
    } catch (RuntimeException refused) {
      answer(id, size, refused);
    }
  }

  private synchronized void answer(long id, int size, Throwable failure) {
    inFlight--;
    inFlightBytes -= size;
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
      askMore();
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
