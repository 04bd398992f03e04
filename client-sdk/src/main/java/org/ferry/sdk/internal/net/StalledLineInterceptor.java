package org.ferry.sdk.internal.net;

import io.grpc.Attributes;
import io.grpc.CallOptions;
import io.grpc.Channel;
import io.grpc.ClientCall;
import io.grpc.ClientInterceptor;
import io.grpc.Deadline;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.Status;
import java.util.concurrent.TimeUnit;
import org.ferry.proto.ServerAddress;
import org.ferry.sdk.internal.dial.Dialer;

/**
 * Tells the {@link Dialer} which unary calls to one server wait for their answer, so that it can
 * see a line stall; and makes a unary call again, while its deadline allows, when the dialer
 * closed its connection because the line stalled. A call that times out is reported to the
 * dialer, which counts it against the line if nothing came back while it waited.
 *
 * <p>A call is made again only when nothing of its answer came back, so its outcome is unknown:
 * a send carries its envelope id, which the recipient de-duplicates; a mailbox creation may leave
 * an unused mailbox behind; an invitation taken twice is refused the second time as used.
 */
final class StalledLineInterceptor implements ClientInterceptor {
  /** Attempts of one call: the first and at most this many minus one after stalls. */
  static final int ATTEMPTS = 3;
  /** Less time than this left before the deadline is not worth another attempt. */
  static final long MIN_LEFT_MILLIS = 500;

  private final ServerAddress server;
  private final Dialer dialer;

  StalledLineInterceptor(ServerAddress server, Dialer dialer) {
    this.server = server;
    this.dialer = dialer;
  }

  @Override
  public <ReqT, RespT> ClientCall<ReqT, RespT> interceptCall(
      MethodDescriptor<ReqT, RespT> method, CallOptions options, Channel next) {
    if (method.getType() != MethodDescriptor.MethodType.UNARY) {
      return next.newCall(method, options);
    }
    return new RetryingCall<>(method, options, next);
  }

  /** One unary call, kept so that it can be made again; callbacks arrive one at a time. */
  private final class RetryingCall<ReqT, RespT> extends ClientCall<ReqT, RespT> {
    private final MethodDescriptor<ReqT, RespT> method;
    private final CallOptions options;
    private final Channel next;
    private Listener<RespT> listener;
    private Metadata headers;
    private ReqT message;
    private int requested;
    private boolean halfClosed;
    private boolean cancelled;
    private int attempts;
    private ClientCall<ReqT, RespT> call;

    RetryingCall(MethodDescriptor<ReqT, RespT> method, CallOptions options, Channel next) {
      this.method = method;
      this.options = options;
      this.next = next;
    }

    @Override
    public synchronized void start(Listener<RespT> responseListener, Metadata metadata) {
      listener = responseListener;
      headers = metadata;
      attempt();
    }

    /** Starts an attempt and gives it what the caller gave so far. */
    private void attempt() {
      attempts++;
      Dialer.Call waiting = dialer.callStarted(server);
      Metadata copy = new Metadata();
      copy.merge(headers);
      call = next.newCall(method, options);
      call.start(new Attempt(waiting), copy);
      if (requested > 0) {
        call.request(requested);
      }
      if (message != null) {
        call.sendMessage(message);
      }
      if (halfClosed) {
        call.halfClose();
      }
    }

    private synchronized boolean retry(Status status, Dialer.Call waiting) {
      Deadline deadline = options.getDeadline();
      boolean timeLeft = deadline == null || deadline.timeRemaining(TimeUnit.MILLISECONDS) >= MIN_LEFT_MILLIS;
      if (status.getCode() == Status.Code.UNAVAILABLE && waiting.lineStalledSince() && !cancelled
          && halfClosed && attempts < ATTEMPTS && timeLeft) {
        attempt();
        return true;
      }
      return false;
    }

    @Override
    public synchronized void request(int numMessages) {
      requested += numMessages;
      call.request(numMessages);
    }

    @Override
    public synchronized void cancel(String why, Throwable cause) {
      cancelled = true;
      if (call != null) {
        call.cancel(why, cause);
      }
    }

    @Override
    public synchronized void halfClose() {
      halfClosed = true;
      call.halfClose();
    }

    @Override
    public synchronized void sendMessage(ReqT m) {
      message = m;
      call.sendMessage(m);
    }

    @Override
    public synchronized boolean isReady() {
      return call.isReady();
    }

    @Override
    public synchronized Attributes getAttributes() {
      return call.getAttributes();
    }

    /** One attempt's callbacks: passed on unless the attempt is made again. */
    private final class Attempt extends Listener<RespT> {
      private final Dialer.Call waiting;
      private boolean answered;

      Attempt(Dialer.Call waiting) {
        this.waiting = waiting;
      }

      @Override
      public void onHeaders(Metadata h) {
        answered = true;
        listener.onHeaders(h);
      }

      @Override
      public void onMessage(RespT m) {
        answered = true;
        listener.onMessage(m);
      }

      @Override
      public void onReady() {
        listener.onReady();
      }

      @Override
      public void onClose(Status status, Metadata trailers) {
        waiting.done();
        if (!answered && retry(status, waiting)) {
          return;
        }
        if (status.getCode() == Status.Code.DEADLINE_EXCEEDED && !answered) {
          waiting.timedOut();
        }
        listener.onClose(status, trailers);
      }
    }
  }
}
