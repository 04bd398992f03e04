package org.ferry.it.load;

import com.google.protobuf.ByteString;
import io.grpc.ManagedChannel;
import io.grpc.stub.StreamObserver;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Supplier;
import org.ferry.proto.ServerAddress;
import org.ferry.proto.v1.Ack;
import org.ferry.proto.v1.Delivery;
import org.ferry.proto.v1.MailboxesGrpc;
import org.ferry.proto.v1.ReceiveRequest;
import org.ferry.proto.v1.ReceiveResponse;
import org.ferry.proto.v1.Subscribe;

/**
 * An owner that stays connected: subscribes to its mailboxes, hands every delivery to a
 * listener and only then acknowledges it, and reconnects (to wherever the supplier says the
 * server is now) whenever the stream ends.
 */
public final class Receiver implements AutoCloseable {
  /** Called before the delivery is acknowledged. */
  public interface Listener {
    void delivered(Delivery delivery);
  }

  /** Told of the server's confirmations of acks (see {@code Subscribe.confirm_acks}). */
  public interface AckListener {
    void confirmed(ByteString mailbox, List<Long> deliveryIds);
  }

  private final Supplier<ServerAddress> server;
  private final List<LoadClient.Mailbox> mailboxes;
  private final Listener listener;
  private final AckListener ackListener;
  private final CountDownLatch stopped = new CountDownLatch(1);
  private final AtomicReference<ManagedChannel> channel = new AtomicReference<>();
  private final Thread thread;
  private final AtomicInteger streams = new AtomicInteger();

  public Receiver(Supplier<ServerAddress> server, List<LoadClient.Mailbox> mailboxes, Listener listener) {
    this(server, mailboxes, listener, null);
  }

  /**
   * A receiver that asks the server to confirm its acks and hands the confirmations to
   * {@code ackListener} (null: do not ask).
   */
  public Receiver(Supplier<ServerAddress> server, List<LoadClient.Mailbox> mailboxes, Listener listener,
      AckListener ackListener) {
    this.server = server;
    this.mailboxes = List.copyOf(mailboxes);
    this.listener = listener;
    this.ackListener = ackListener;
    this.thread = new Thread(this::loop, "receiver");
    thread.setDaemon(true);
    thread.start();
  }

  private void loop() {
    while (stopped.getCount() > 0) {
      ManagedChannel ch = LoadClient.channel(server.get());
      channel.set(ch);
      streams.incrementAndGet();
      CountDownLatch ended = new CountDownLatch(1);
      AtomicReference<StreamObserver<ReceiveRequest>> requests = new AtomicReference<>();
      requests.set(MailboxesGrpc.newStub(ch).receive(new StreamObserver<>() {
        @Override
        public void onNext(ReceiveResponse r) {
          if (r.hasChallenge()) {
            for (LoadClient.Mailbox m : mailboxes) {
              requests.get().onNext(ReceiveRequest.newBuilder()
                  .setSubscribe(Subscribe.newBuilder()
                      .setMailboxId(m.id())
                      .setSignature(m.sign(r.getChallenge().getNonce()))
                      .setConfirmAcks(ackListener != null))
                  .build());
            }
          } else if (r.hasDelivery()) {
            Delivery d = r.getDelivery();
            listener.delivered(d);
            requests.get().onNext(ReceiveRequest.newBuilder()
                .setAck(Ack.newBuilder().setMailboxId(d.getMailboxId()).setDeliveryId(d.getDeliveryId()))
                .build());
          } else if (r.hasAcknowledged() && ackListener != null) {
            ackListener.confirmed(r.getAcknowledged().getMailboxId(), r.getAcknowledged().getDeliveryIdsList());
          }
        }

        @Override
        public void onError(Throwable t) {
          ended.countDown();
        }

        @Override
        public void onCompleted() {
          ended.countDown();
        }
      }));
      try {
        while (stopped.getCount() > 0 && !ended.await(100, TimeUnit.MILLISECONDS)) {
          // Keep receiving.
        }
        ch.shutdownNow();
        // A short pause before reconnecting to a server that is (re)starting.
        stopped.await(100, TimeUnit.MILLISECONDS);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        return;
      }
    }
  }

  /** How many receive streams this receiver has opened: 1 plus the reconnects. */
  public int streamsOpened() {
    return streams.get();
  }

  @Override
  public void close() {
    stopped.countDown();
    try {
      thread.join(10_000);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    ManagedChannel ch = channel.get();
    if (ch != null) {
      ch.shutdownNow();
    }
  }
}
