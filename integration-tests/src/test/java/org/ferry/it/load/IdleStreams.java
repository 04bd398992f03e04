package org.ferry.it.load;

import io.grpc.ManagedChannel;
import io.grpc.stub.StreamObserver;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;
import org.ferry.proto.ServerAddress;
import org.ferry.proto.v1.MailboxesGrpc;
import org.ferry.proto.v1.ReceiveRequest;
import org.ferry.proto.v1.ReceiveResponse;
import org.ferry.proto.v1.Subscribe;

/**
 * Owners that are connected and have nothing to receive: one receive stream per mailbox, each
 * subscribed to its own mailbox, spread round-robin over a number of TLS connections. The
 * constructor returns once every stream is subscribed; closing drops the connections.
 */
public final class IdleStreams implements AutoCloseable {
  private final List<ManagedChannel> channels = new ArrayList<>();
  private final AtomicBoolean closing = new AtomicBoolean();

  public IdleStreams(ServerAddress server, List<LoadClient.Mailbox> mailboxes, int connections, Duration bound)
      throws InterruptedException, TimeoutException {
    for (int i = 0; i < connections; i++) {
      channels.add(LoadClient.channel(server));
    }
    CountDownLatch subscribed = new CountDownLatch(mailboxes.size());
    for (int i = 0; i < mailboxes.size(); i++) {
      open(channels.get(i % connections), mailboxes.get(i), subscribed);
    }
    if (!subscribed.await(bound.toMillis(), TimeUnit.MILLISECONDS)) {
      close();
      throw new TimeoutException(subscribed.getCount() + " of " + mailboxes.size() + " streams never subscribed");
    }
  }

  private void open(ManagedChannel channel, LoadClient.Mailbox box, CountDownLatch subscribed) {
    AtomicReference<StreamObserver<ReceiveRequest>> requests = new AtomicReference<>();
    requests.set(MailboxesGrpc.newStub(channel).receive(new StreamObserver<>() {
      @Override
      public void onNext(ReceiveResponse r) {
        if (r.hasChallenge()) {
          requests.get().onNext(ReceiveRequest.newBuilder().setSubscribe(Subscribe.newBuilder()
              .setMailboxId(box.id()).setSignature(box.sign(r.getChallenge().getNonce()))).build());
        } else if (r.hasSubscribed()) {
          subscribed.countDown();
        }
      }

      @Override
      public void onError(Throwable t) {
        if (!closing.get()) {
          System.err.println("idle stream failed: " + t);
        }
      }

      @Override
      public void onCompleted() {}
    }));
  }

  /** Drops every connection and waits (bounded) until they are gone. */
  @Override
  public void close() {
    closing.set(true);
    channels.forEach(ManagedChannel::shutdownNow);
    try {
      for (ManagedChannel c : channels) {
        c.awaitTermination(10, TimeUnit.SECONDS);
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
