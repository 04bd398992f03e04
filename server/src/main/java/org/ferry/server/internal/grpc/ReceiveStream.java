package org.ferry.server.internal.grpc;

import com.google.protobuf.ByteString;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Executor;
import org.ferry.proto.v1.Ack;
import org.ferry.proto.v1.Challenge;
import org.ferry.proto.v1.Delivery;
import org.ferry.proto.v1.Envelope;
import org.ferry.proto.v1.ReceiveRequest;
import org.ferry.proto.v1.ReceiveResponse;
import org.ferry.proto.v1.Subscribe;
import org.ferry.proto.v1.Subscribed;
import org.ferry.server.internal.mailbox.DeliveryNotifier;
import org.ferry.server.internal.mailbox.MailboxId;
import org.ferry.server.internal.mailbox.MailboxManager;
import org.ferry.server.internal.mailbox.QueuedEnvelope;
import org.ferry.server.internal.util.SerializingExecutor;

/**
 * One owner's receive stream. Everything that touches its state runs on one serializing
 * executor: requests from the client, wake-ups from senders, and transport readiness.
 *
 * <p>Per mailbox it keeps a cursor (the next position to read) and the set of deliveries sent
 * but not yet acknowledged, at most {@link #WINDOW} of them. A new stream starts every cursor
 * at zero, so whatever was not acknowledged before is delivered again.
 */
final class ReceiveStream implements StreamObserver<ReceiveRequest> {
  static final int WINDOW = 32;
  static final int MAX_SUBSCRIPTIONS = 4096;

  private final MailboxManager mailboxes;
  private final ServerCallStreamObserver<ReceiveResponse> out;
  private final Executor serial;
  private final byte[] nonce;
  private final Map<MailboxId, Subscription> subscriptions = new LinkedHashMap<>();
  private boolean closed;

  private static final class Subscription {
    long cursor;
    final Set<Long> unacked = new HashSet<>();
    DeliveryNotifier.Registration registration;
  }

  ReceiveStream(
      MailboxManager mailboxes,
      ServerCallStreamObserver<ReceiveResponse> out,
      Executor executor,
      byte[] nonce) {
    this.mailboxes = mailboxes;
    this.out = out;
    this.serial = new SerializingExecutor(executor);
    this.nonce = nonce.clone();
  }

  void start() {
    out.setOnReadyHandler(() -> serial.execute(this::pumpAll));
    out.setOnCancelHandler(() -> serial.execute(this::release));
    serial.execute(
        () ->
            out.onNext(
                ReceiveResponse.newBuilder()
                    .setChallenge(Challenge.newBuilder().setNonce(ByteString.copyFrom(nonce)))
                    .build()));
  }

  @Override
  public void onNext(ReceiveRequest request) {
    serial.execute(() -> guarded(() -> handle(request)));
  }

  @Override
  public void onError(Throwable t) {
    serial.execute(this::release);
  }

  @Override
  public void onCompleted() {
    serial.execute(
        () -> {
          if (!closed) {
            release();
            out.onCompleted();
          }
        });
  }

  private void handle(ReceiveRequest request) {
    if (closed) {
      return;
    }
    switch (request.getKindCase()) {
      case SUBSCRIBE -> subscribe(request.getSubscribe());
      case ACK -> ack(request.getAck());
      default -> throw GrpcErrors.invalidArgument("receive request has neither subscribe nor ack");
    }
  }

  private void subscribe(Subscribe request) {
    MailboxId id = MailboxId.fromWire(request.getMailboxId());
    if (subscriptions.containsKey(id)) {
      out.onNext(subscribed(id));
      return;
    }
    if (subscriptions.size() >= MAX_SUBSCRIPTIONS) {
      throw GrpcErrors.failedPrecondition("too many mailboxes on one stream");
    }
    mailboxes.authenticateReceiver(id, nonce, request.getSignature().toByteArray());
    Subscription sub = new Subscription();
    subscriptions.put(id, sub);
    // Registered before the first read, so nothing made durable after that read is missed.
    sub.registration = mailboxes.onNew(id, () -> serial.execute(() -> pump(id)));
    out.onNext(subscribed(id));
    pump(id);
  }

  private void ack(Ack ack) {
    MailboxId id = MailboxId.fromWire(ack.getMailboxId());
    Subscription sub = subscriptions.get(id);
    if (sub == null) {
      throw GrpcErrors.failedPrecondition("ack for a mailbox this stream is not subscribed to");
    }
    // Acks are idempotent: one for a delivery not in flight (acked already) changes nothing.
    if (sub.unacked.remove(ack.getDeliveryId())) {
      mailboxes.acknowledge(id, ack.getDeliveryId());
      pump(id);
    }
  }

  /** When the transport can take more: every mailbox may have something waiting. */
  private void pumpAll() {
    for (MailboxId id : List.copyOf(subscriptions.keySet())) {
      pump(id);
    }
  }

  /** Sends what waits in one mailbox, as far as its window and the transport allow. */
  private void pump(MailboxId id) {
    Subscription sub = subscriptions.get(id);
    if (closed || sub == null) {
      return;
    }
    guarded(
        () -> {
          while (out.isReady() && sub.unacked.size() < WINDOW) {
            List<QueuedEnvelope> batch = mailboxes.pending(id, sub.cursor, WINDOW - sub.unacked.size());
            if (batch.isEmpty()) {
              return;
            }
            for (QueuedEnvelope env : batch) {
              out.onNext(delivery(env));
              sub.unacked.add(env.seq());
              sub.cursor = env.seq() + 1;
            }
          }
        });
  }

  private static ReceiveResponse subscribed(MailboxId id) {
    return ReceiveResponse.newBuilder()
        .setSubscribed(Subscribed.newBuilder().setMailboxId(id.toWire()))
        .build();
  }

  private static ReceiveResponse delivery(QueuedEnvelope env) {
    return ReceiveResponse.newBuilder()
        .setDelivery(
            Delivery.newBuilder()
                .setMailboxId(env.mailbox().toWire())
                .setDeliveryId(env.seq())
                .setEnvelope(
                    Envelope.newBuilder()
                        .setId(ByteString.copyFrom(env.envelopeId()))
                        .setBody(ByteString.copyFrom(env.body()))))
        .build();
  }

  private void guarded(Runnable action) {
    try {
      action.run();
    } catch (RuntimeException e) {
      fail(GrpcErrors.toStatusException(e, "receive stream"));
    }
  }

  private void fail(StatusRuntimeException failure) {
    if (closed) {
      return;
    }
    release();
    try {
      out.onError(failure);
    } catch (IllegalStateException alreadyClosed) {
      // The client went away first.
    }
  }

  private void release() {
    closed = true;
    subscriptions.values().forEach(s -> s.registration.close());
    subscriptions.clear();
  }
}
