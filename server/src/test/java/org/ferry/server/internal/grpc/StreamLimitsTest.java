package org.ferry.server.internal.grpc;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.grpc.ManagedChannel;
import io.grpc.Status;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.ferry.server.internal.mailbox.ServerLimits;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Issue 19 point 2: the caps on receive streams, each refused with RESOURCE_EXHAUSTED. */
class StreamLimitsTest {
  private static final long STREAM = StreamLimits.STREAM_BYTES;

  @TempDir Path dir;
  TestServer server;

  @AfterEach
  void stop() {
    if (server != null) {
      server.close();
    }
  }

  private void start(StreamLimits limits) throws Exception {
    server = new TestServer(dir, ServerLimits.DEFAULTS, limits);
  }

  @Test
  void receiveStreamsBeyondTheConnectionCapAreRefusedUntilOneCloses() throws Exception {
    start(new StreamLimits(2, 100 * STREAM, 100 * STREAM, 8, 1 << 20));
    OwnerStream first = new OwnerStream(server);
    OwnerStream second = new OwnerStream(server);
    OwnerStream third = new OwnerStream(server);
    Status refused = third.awaitEnd();
    assertEquals(Status.Code.RESOURCE_EXHAUSTED, refused.getCode());
    assertEquals("too many receive streams on one connection (at most 2)", refused.getDescription());

    first.close();
    await().atMost(Duration.ofSeconds(10)).until(() -> server.streamLimits.reservedBytes() == STREAM);
    TestServer.Box box = server.createMailbox();
    try (OwnerStream again = new OwnerStream(server).subscribe(box)) {
      server.mailboxes().send(TestServer.sendTo(box, TestServer.bytes(16), 1024).build());
      assertEquals(1, again.take(1).size());
    }
    second.close();
  }

  @Test
  void outboundBytesOfOneConnectionAreCapped() throws Exception {
    start(new StreamLimits(100, 3 * STREAM, 100 * STREAM, 8, 1 << 20));
    List<OwnerStream> open = new ArrayList<>();
    for (int i = 0; i < 3; i++) {
      open.add(new OwnerStream(server));
    }
    Status refused = new OwnerStream(server).awaitEnd();
    assertEquals(Status.Code.RESOURCE_EXHAUSTED, refused.getCode());
    assertEquals("this connection's receive streams hold all the outbound memory it may use",
        refused.getDescription());
    open.forEach(OwnerStream::close);
  }

  @Test
  void outboundBytesOfTheWholeServerAreCappedAcrossConnections() throws Exception {
    start(new StreamLimits(8, 8 * STREAM, 2 * STREAM, 8, 1 << 20));
    ManagedChannel other = server.newChannel();
    try {
      OwnerStream a = new OwnerStream(server);
      OwnerStream b = new OwnerStream(server, other);
      Status refused = new OwnerStream(server, other).awaitEnd();
      assertEquals(Status.Code.RESOURCE_EXHAUSTED, refused.getCode());
      assertEquals("server busy: too many receive streams; retry later", refused.getDescription());
      a.close();
      b.close();
    } finally {
      other.shutdownNow();
    }
  }

  @Test
  void subscriptionsToOneMailboxBeyondItsCapAreRefused() throws Exception {
    start(new StreamLimits(8, 8 * STREAM, 100 * STREAM, 2, 1 << 20));
    TestServer.Box box = server.createMailbox();
    OwnerStream first = new OwnerStream(server).subscribe(box);
    OwnerStream second = new OwnerStream(server).subscribe(box);
    OwnerStream third = new OwnerStream(server).subscribe(box);
    Status refused = third.awaitEnd();
    assertEquals(Status.Code.RESOURCE_EXHAUSTED, refused.getCode());
    assertEquals("too many receive streams for this mailbox (at most 2)", refused.getDescription());

    // The two within the cap still receive.
    server.mailboxes().send(TestServer.sendTo(box, TestServer.bytes(16), 1024).build());
    assertEquals(1, first.take(1).size());
    assertEquals(1, second.take(1).size());
    first.close();
    await().atMost(Duration.ofSeconds(10)).until(() -> {
      try (OwnerStream fourth = new OwnerStream(server).subscribe(box)) {
        // Subscribed, and not refused: the delivery not yet acked comes again.
        return fourth.take(1).size() == 1;
      }
    });
    second.close();
  }

  @Test
  void closedStreamsGiveBackTheirReservationsSubscriptionsAndHandoffs() throws Exception {
    start(new StreamLimits(8, 8 * STREAM, 100 * STREAM, 8, 1 << 20));
    TestServer.Box box = server.createMailbox();
    for (int round = 0; round < 20; round++) {
      try (OwnerStream owner = new OwnerStream(server).subscribe(box)) {
        server.mailboxes().send(TestServer.sendTo(box, TestServer.bytes(16), 1024).build());
        owner.take(1);
      }
    }
    await().atMost(Duration.ofSeconds(10)).until(() ->
        server.streamLimits.reservedBytes() == 0 && server.streamLimits.subscribedMailboxes() == 0
            && server.streamLimits.handoffBytes() == 0);
  }

  @Test
  void envelopesStillArriveFromTheStoreWhenTheHandoffBudgetIsSpent() throws Exception {
    start(new StreamLimits(8, 8 * STREAM, 100 * STREAM, 8, 0));
    TestServer.Box box = server.createMailbox();
    try (OwnerStream owner = new OwnerStream(server).subscribe(box)) {
      for (int i = 0; i < 200; i++) {
        server.mailboxes().send(TestServer.sendTo(box, TestServer.bytes(16), 1024).build());
      }
      // Each write's handoff is refused: the stream reads every one from the store.
      for (int got = 0; got < 200; got++) {
        owner.ack(owner.take(1).get(0));
      }
      assertEquals(List.of(), owner.drain(Duration.ofMillis(200)));
    }
  }
}
