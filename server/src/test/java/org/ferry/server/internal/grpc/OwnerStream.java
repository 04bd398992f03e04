package org.ferry.server.internal.grpc;

import static org.awaitility.Awaitility.await;

import com.google.protobuf.ByteString;
import io.grpc.Status;
import io.grpc.stub.StreamObserver;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.ferry.proto.OwnerKeys;
import org.ferry.proto.v1.Ack;
import org.ferry.proto.v1.Delivery;
import org.ferry.proto.v1.MailboxesGrpc;
import org.ferry.proto.v1.ReceiveRequest;
import org.ferry.proto.v1.ReceiveResponse;
import org.ferry.proto.v1.Subscribe;

/** An owner's receive stream, driven by a test. */
final class OwnerStream implements AutoCloseable {
  private final BlockingQueue<Delivery> deliveries = new LinkedBlockingQueue<>();
  private final BlockingQueue<Long> acknowledged = new LinkedBlockingQueue<>();
  private final AtomicReference<byte[]> nonce = new AtomicReference<>();
  private final AtomicReference<Status> ended = new AtomicReference<>();
  private final StreamObserver<ReceiveRequest> requests;

  OwnerStream(TestServer server) {
    this(server, server.channel);
  }

  /** A stream on {@code channel} (another connection to the same server). */
  OwnerStream(TestServer server, io.grpc.ManagedChannel channel) {
    requests = MailboxesGrpc.newStub(channel).receive(new StreamObserver<>() {
      @Override
      public void onNext(ReceiveResponse r) {
        if (r.hasChallenge()) {
          nonce.set(r.getChallenge().getNonce().toByteArray());
        } else if (r.hasDelivery()) {
          deliveries.add(r.getDelivery());
        } else if (r.hasAcknowledged()) {
          acknowledged.addAll(r.getAcknowledged().getDeliveryIdsList());
        }
      }

      @Override
      public void onError(Throwable t) {
        ended.set(Status.fromThrowable(t));
      }

      @Override
      public void onCompleted() {
        ended.set(Status.OK);
      }
    });
    // The challenge, or the end of a stream the server refused.
    await().atMost(Duration.ofSeconds(10)).until(() -> nonce.get() != null || ended.get() != null);
  }

  byte[] nonce() {
    return nonce.get();
  }

  OwnerStream subscribe(TestServer.Box box) {
    return subscribeSigned(box.id(), OwnerKeys.sign(
        box.owner().getPrivate(), OwnerKeys.RECEIVE_CONTEXT, nonce(), box.id().toByteArray()));
  }

  OwnerStream subscribeSigned(ByteString mailbox, byte[] signature) {
    requests.onNext(ReceiveRequest.newBuilder()
        .setSubscribe(Subscribe.newBuilder().setMailboxId(mailbox).setSignature(ByteString.copyFrom(signature)))
        .build());
    return this;
  }

  /** Subscribes asking the server to confirm acks ({@link #takeAcknowledged}). */
  OwnerStream subscribeConfirmingAcks(TestServer.Box box) {
    requests.onNext(ReceiveRequest.newBuilder()
        .setSubscribe(Subscribe.newBuilder()
            .setMailboxId(box.id())
            .setSignature(ByteString.copyFrom(OwnerKeys.sign(
                box.owner().getPrivate(), OwnerKeys.RECEIVE_CONTEXT, nonce(), box.id().toByteArray())))
            .setConfirmAcks(true))
        .build());
    return this;
  }

  /** Waits for {@code n} confirmed delivery ids (at most 10 s) and returns them. */
  List<Long> takeAcknowledged(int n) throws InterruptedException {
    return take(acknowledged, n, "acknowledged deliveries");
  }

  private static <T> List<T> take(BlockingQueue<T> queue, int n, String what) throws InterruptedException {
    List<T> out = new ArrayList<>();
    while (out.size() < n) {
      T item = queue.poll(10, TimeUnit.SECONDS);
      if (item == null) {
        throw new AssertionError("expected " + n + " " + what + ", got " + out.size());
      }
      out.add(item);
    }
    return out;
  }

  /** Waits for {@code n} deliveries (at most 10 s) and returns them. */
  List<Delivery> take(int n) throws InterruptedException {
    return take(deliveries, n, "deliveries");
  }

  /** Deliveries that arrive within {@code within}; for asserting that none come. */
  List<Delivery> drain(Duration within) throws InterruptedException {
    List<Delivery> out = new ArrayList<>();
    Delivery d = deliveries.poll(within.toMillis(), TimeUnit.MILLISECONDS);
    while (d != null) {
      out.add(d);
      d = deliveries.poll(within.toMillis(), TimeUnit.MILLISECONDS);
    }
    return out;
  }

  void ack(Delivery d) {
    requests.onNext(ReceiveRequest.newBuilder()
        .setAck(Ack.newBuilder().setMailboxId(d.getMailboxId()).setDeliveryId(d.getDeliveryId()))
        .build());
  }

  /** Waits for the server to end the stream and returns its status. */
  Status awaitEnd() {
    await().atMost(Duration.ofSeconds(10)).until(() -> ended.get() != null);
    return ended.get();
  }

  @Override
  public void close() {
    try {
      requests.onCompleted();
    } catch (IllegalStateException alreadyClosed) {
      // ended by the server
    }
  }
}
