package org.ferry.server.internal.grpc;

import com.google.protobuf.ByteString;
import com.google.protobuf.UnsafeByteOperations;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Queue;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.Executor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import org.ferry.proto.v1.Ack;
import org.ferry.proto.v1.Acknowledged;
import org.ferry.proto.v1.Challenge;
import org.ferry.proto.v1.Delivery;
import org.ferry.proto.v1.Envelope;
import org.ferry.proto.v1.ReceiveRequest;
import org.ferry.proto.v1.ReceiveResponse;
import org.ferry.proto.v1.Subscribe;
import org.ferry.proto.v1.Subscribed;
import org.ferry.server.internal.mailbox.MailboxId;
import org.ferry.server.internal.mailbox.MailboxManager;
import org.ferry.server.internal.mailbox.QueuedEnvelope;
import org.ferry.server.internal.store.MailboxSequencer;
import org.ferry.server.internal.store.QueueSlice;
import org.ferry.server.internal.store.StoreException;
import org.ferry.server.internal.util.SerializingExecutor;
import org.ferry.server.internal.metrics.ServerMetrics;
import org.ferry.ops.log.OneLineLogs;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One owner's receive stream. Everything that touches its state runs on one serializing
 * executor: requests from the client, envelopes handed over by writers, and transport
 * readiness.
 *
 * <p>Per mailbox it keeps {@code handled}, the position up to which everything of the mailbox
 * was delivered on this stream (or skipped, if expired), and the deliveries sent but not yet
 * acknowledged, at most {@link #WINDOW}. A new stream starts at zero, so whatever was not
 * acknowledged before is delivered again.
 *
 * <p>Two ways in. <b>Online</b>: a write to a subscribed mailbox hands its stored envelope, with
 * the mailbox's position before it, straight to the stream when it finishes; the stream sends it
 * without reading the store as soon as everything up to that previous position is handled, so
 * writes that finish out of order still go out in order. Handed-over envelopes wait in a buffer
 * of at most {@link #HANDOFF_BYTES} per stream; beyond that they are left to the store.
 * <b>From the store</b>: after subscribing (whatever was written before), after the buffer
 * overflowed, and whenever a chain link is missing, the stream reads the store from
 * {@code handled + 1} up to the mailbox's visible end. Each finished write wakes the stream, and
 * the mailbox's visibility depends only on its own writes, so the last write to finish always
 * makes everything deliverable: an acknowledged envelope never waits for another envelope or a
 * reconnect.
 *
 * <p>Acks are collected and handed to the store's group commit as one delete per mailbox when
 * the stream has no more requests queued; the window reopens at once.
 *
 * <p><b>Memory.</b> The stream sends only while the transport is ready, and reads the store at
 * most {@link StreamLimits#READ_BYTES} at a time, so a client that stops reading holds at most
 * {@link StreamLimits#STREAM_BYTES} of the server's direct memory; the stream reserved that much
 * from {@link StreamLimits} when it opened. Handed-over envelopes also come out of the limits'
 * shared handoff budget. An {@code Error} in the stream's work (out of memory, most likely) fails
 * this stream and is logged; it never kills the thread it ran on.
 */
final class ReceiveStream implements StreamObserver<ReceiveRequest> {
  private static final Logger log = LoggerFactory.getLogger(ReceiveStream.class);
  private final ServerMetrics metrics;

  /** Deliveries in flight (sent, not acked) per mailbox. */
  static final int WINDOW = 64;
  static final int MAX_SUBSCRIPTIONS = 4096;
  /** Bytes of handed-over envelopes one stream buffers across its mailboxes: 1 MiB. */
  static final long HANDOFF_BYTES = 1L << 20;
  /** How soon acks that could not be written for lack of disk space are tried again: 500 ms. */
  static final long ACK_RETRY_MILLIS = 500;

  private final MailboxManager mailboxes;
  private final StreamLimits limits;
  private final StreamLimits.Reservation reservation;
  private final ServerCallStreamObserver<ReceiveResponse> out;
  private final Executor serial;
  private final byte[] nonce;
  private final Map<MailboxId, Subscription> subscriptions = new LinkedHashMap<>();
  /** Acks received and not yet applied, per mailbox: applied by {@link #applyAcks}. */
  private final Map<Subscription, List<Long>> pendingAcks = new LinkedHashMap<>();
  private final AtomicLong handoffBytes = new AtomicLong();
  private volatile boolean closed;

  /** One handed-over write: the stored envelope, or null for a write that failed. */
  private record Handoff(long seq, long previous, QueuedEnvelope envelope) {
    int size() {
      return envelope == null ? 0 : envelope.body().length;
    }
  }

  private final class Subscription implements MailboxSequencer.Watcher {
    final MailboxId id;
    final boolean confirmAcks;
    final Set<Long> unacked = new HashSet<>();
    /** Written by writers' threads, drained on the stream's executor. */
    final Queue<Handoff> inbox = new ConcurrentLinkedQueue<>();
    final AtomicBoolean wakeQueued = new AtomicBoolean();
    /** The highest position handed over but dropped for lack of buffer room. */
    final AtomicLong droppedUpTo = new AtomicLong();
    final TreeMap<Long, Handoff> buffered = new TreeMap<>();
    long handled;
    /** The store may hold positions up to here that were not handed over: read it. */
    long readUntil;
    MailboxSequencer.Watch watch;

    Subscription(MailboxId id, boolean confirmAcks) {
      this.id = id;
      this.confirmAcks = confirmAcks;
    }

    /** On a writer's thread, right after its write finished. */
    @Override
    public void finished(long seq, long previous, QueuedEnvelope envelope) {
      if (closed) {
        return;
      }
      Handoff h = new Handoff(seq, previous, envelope);
      if (takeHandoff(h.size())) {
        inbox.add(h);
        if (closed && inbox.remove(h)) {
          // Released meanwhile, and its clean-up did not see this one.
          returnHandoff(h.size());
        }
      } else {
        droppedUpTo.accumulateAndGet(seq, Math::max);
      }
      if (wakeQueued.compareAndSet(false, true)) {
        serial.execute(() -> {
          wakeQueued.set(false);
          pump(this);
        });
      }
    }
  }

  /**
   * @throws io.grpc.StatusRuntimeException RESOURCE_EXHAUSTED when {@code limits} allow no more
   *     receive streams on this connection or on the server
   */
  ReceiveStream(
      MailboxManager mailboxes,
      StreamLimits limits,
      ServerCallStreamObserver<ReceiveResponse> out,
      Executor executor,
      byte[] nonce,
      ServerMetrics metrics) {
    this.metrics = metrics;
    this.mailboxes = mailboxes;
    this.limits = limits;
    this.reservation = limits.openStream();
    this.out = out;
    this.serial = new SerializingExecutor(executor);
    this.nonce = nonce.clone();
  }

  void start() {
    out.setOnReadyHandler(() -> serial.execute(() -> guarded(this::pumpAll)));
    out.setOnCancelHandler(() -> serial.execute(this::release));
    serial.execute(
        () ->
            guarded(() -> out.onNext(
                ReceiveResponse.newBuilder()
                    .setChallenge(Challenge.newBuilder().setNonce(ByteString.copyFrom(nonce)))
                    .build())));
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
            guarded(this::applyAcks);
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
    limits.subscribe(id);
    Subscription sub = new Subscription(id, request.getConfirmAcks());
    subscriptions.put(id, sub);
    // Watch first, then read: whatever finishes after the watch began is handed over, whatever
    // lies at or below its starting position is read from the store.
    sub.watch = mailboxes.watch(id, sub);
    sub.readUntil = sub.watch.from();
    out.onNext(subscribed(id));
    pump(sub);
  }

  private void ack(Ack ack) {
    MailboxId id = MailboxId.fromWire(ack.getMailboxId());
    Subscription sub = subscriptions.get(id);
    if (sub == null) {
      throw GrpcErrors.failedPrecondition("ack for a mailbox this stream is not subscribed to");
    }
    // Acks are idempotent: one for a delivery not in flight (acked already) changes nothing.
    if (sub.unacked.remove(ack.getDeliveryId())) {
      if (pendingAcks.isEmpty()) {
        // Runs after the requests queued by now, so that a burst of acks is one batch.
        serial.execute(() -> guarded(this::applyAcks));
      }
      pendingAcks.computeIfAbsent(sub, s -> new ArrayList<>()).add(ack.getDeliveryId());
    }
  }

  private void applyAcks() {
    if (closed || pendingAcks.isEmpty()) {
      return;
    }
    List<Map.Entry<Subscription, List<Long>>> batch = new ArrayList<>(pendingAcks.entrySet());
    pendingAcks.clear();
    for (Map.Entry<Subscription, List<Long>> e : batch) {
      Subscription sub = e.getKey();
      List<Long> ids = e.getValue();
      // Written by the group commit; the window reopened already when the acks came in.
      mailboxes.acknowledgeAsync(sub.id, ids).whenComplete((removed, failure) -> serial.execute(() -> {
        if (failure != null && StoreException.isDiskFull(failure)) {
          // The envelopes stay stored; the acks are written once the disk has room. The stream
          // goes on, so that its owner can drain and free space.
          CompletableFuture.delayedExecutor(ACK_RETRY_MILLIS, TimeUnit.MILLISECONDS, serial)
              .execute(() -> guarded(() -> requeueAcks(sub, ids)));
        } else if (failure != null) {
          fail(GrpcErrors.toStatusException(failure, "ack"));
        } else {
          metrics.acknowledged(removed);
        }
        if (failure == null && sub.confirmAcks && !closed && subscriptions.get(sub.id) == sub) {
          guarded(() -> out.onNext(ReceiveResponse.newBuilder()
              .setAcknowledged(Acknowledged.newBuilder()
                  .setMailboxId(sub.id.toWire())
                  .addAllDeliveryIds(ids))
              .build()));
        }
      }));
    }
    for (Map.Entry<Subscription, List<Long>> e : batch) {
      pump(e.getKey());
    }
  }

  /** Acks whose write failed for lack of disk space, to be applied again. */
  private void requeueAcks(Subscription sub, List<Long> ids) {
    if (closed || subscriptions.get(sub.id) != sub) {
      return;
    }
    if (pendingAcks.isEmpty()) {
      serial.execute(() -> guarded(this::applyAcks));
    }
    pendingAcks.computeIfAbsent(sub, s -> new ArrayList<>()).addAll(ids);
  }

  /** When the transport can take more: every mailbox may have something waiting. */
  private void pumpAll() {
    for (Subscription sub : List.copyOf(subscriptions.values())) {
      pump(sub);
    }
  }

  /** Sends what waits for one mailbox, as far as its window and the transport allow. */
  private void pump(Subscription sub) {
    if (closed || subscriptions.get(sub.id) != sub) {
      return;
    }
    guarded(() -> {
      for (Handoff h; (h = sub.inbox.poll()) != null; ) {
        sub.buffered.put(h.seq(), h);
      }
      sub.readUntil = Math.max(sub.readUntil, sub.droppedUpTo.get());
      while (out.isReady() && sub.unacked.size() < WINDOW) {
        dropHandled(sub);
        Map.Entry<Long, Handoff> first = sub.buffered.firstEntry();
        if (first != null && first.getValue().previous() <= sub.handled) {
          // The next write in this mailbox's order: nothing lies between it and what is handled.
          Handoff h = first.getValue();
          sub.buffered.pollFirstEntry();
          returnHandoff(h.size());
          if (h.envelope() != null && !mailboxes.isExpired(h.envelope())) {
            send(sub, h.envelope());
          }
          sub.handled = h.seq();
          continue;
        }
        // Past readUntil every write was handed over, or is in progress and will be: wait for
        // it. Below it, read the store, up to its visible end (a write in progress there wakes
        // this stream when it is done).
        if (sub.handled >= sub.readUntil || mailboxes.visibleUpTo(sub.id) <= sub.handled) {
          return;
        }
        QueueSlice slice = mailboxes.pending(
            sub.id, sub.handled + 1, WINDOW - sub.unacked.size(), StreamLimits.READ_BYTES);
        for (QueuedEnvelope env : slice.envelopes()) {
          send(sub, env);
        }
        if (slice.scannedTo() <= sub.handled && slice.envelopes().isEmpty()) {
          return;
        }
        sub.handled = Math.max(sub.handled, slice.scannedTo());
      }
    });
  }

  private void dropHandled(Subscription sub) {
    while (!sub.buffered.isEmpty() && sub.buffered.firstKey() <= sub.handled) {
      returnHandoff(sub.buffered.pollFirstEntry().getValue().size());
    }
  }

  /** Room for a handed-over envelope in this stream's buffer and the server's handoff budget. */
  private boolean takeHandoff(int size) {
    if (handoffBytes.addAndGet(size) <= HANDOFF_BYTES && limits.takeHandoff(size)) {
      return true;
    }
    handoffBytes.addAndGet(-size);
    return false;
  }

  private void returnHandoff(int size) {
    handoffBytes.addAndGet(-size);
    limits.returnHandoff(size);
  }

  private void send(Subscription sub, QueuedEnvelope env) {
    out.onNext(delivery(env));
    sub.unacked.add(env.seq());
    metrics.delivered();
  }

  private static ReceiveResponse subscribed(MailboxId id) {
    return ReceiveResponse.newBuilder()
        .setSubscribed(Subscribed.newBuilder().setMailboxId(id.toWire()))
        .build();
  }

  private static ReceiveResponse delivery(QueuedEnvelope env) {
    // The store's arrays are never changed after they are read or written: no need to copy.
    return ReceiveResponse.newBuilder()
        .setDelivery(
            Delivery.newBuilder()
                .setMailboxId(env.mailbox().toWire())
                .setDeliveryId(env.seq())
                .setEnvelope(
                    Envelope.newBuilder()
                        .setId(UnsafeByteOperations.unsafeWrap(env.envelopeId()))
                        .setBody(UnsafeByteOperations.unsafeWrap(env.body()))))
        .build();
  }

  private void guarded(Runnable action) {
    try {
      action.run();
    } catch (RuntimeException e) {
      fail(GrpcErrors.toStatusException(e, "receive stream"));
    } catch (Error e) {
      // An Error (out of memory, most likely) ends this stream, not the thread it ran on.
      log.error("receive stream failed: {}", OneLineLogs.describe(e));
      fail(Status.INTERNAL.withDescription("server error").asRuntimeException());
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

  /** Ends the stream's hold on everything: watches, counts, buffers, its reservation. Idempotent. */
  private void release() {
    closed = true;
    subscriptions.values().forEach(s -> {
      if (s.watch != null) {
        s.watch.close();
      }
      limits.unsubscribe(s.id);
      for (Handoff h; (h = s.inbox.poll()) != null; ) {
        returnHandoff(h.size());
      }
      s.buffered.values().forEach(h -> returnHandoff(h.size()));
      s.buffered.clear();
    });
    subscriptions.clear();
    pendingAcks.clear();
    reservation.close();
  }
}
