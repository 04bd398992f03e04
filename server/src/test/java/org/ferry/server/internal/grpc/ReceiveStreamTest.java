package org.ferry.server.internal.grpc;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.ferry.proto.v1.Delivery;
import org.ferry.server.internal.mailbox.MailboxId;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The delivery path of a receive stream: handed-over writes, store reads, acks. */
class ReceiveStreamTest {
  @TempDir Path dir;
  TestServer server;

  @BeforeEach
  void start() throws Exception {
    server = new TestServer(dir);
  }

  @AfterEach
  void stop() {
    server.close();
  }

  private static byte[] numbered(int i) {
    byte[] id = TestServer.bytes(16);
    ByteBuffer.wrap(id).putInt(i);
    return id;
  }

  private static int number(Delivery d) {
    return d.getEnvelope().getId().asReadOnlyByteBuffer().getInt();
  }

  @Test
  void liveEnvelopeBehindManyExpiredOnesReachesAFreshReceiver() throws Exception {
    TestServer.Box box = server.createMailbox();
    MailboxId id = new MailboxId(box.id().toByteArray());
    // More expired envelopes than one read takes, and the sweeper has not run.
    for (int i = 0; i < 3 * ReceiveStream.WINDOW; i++) {
      server.store.append(id, TestServer.bytes(16), new byte[1024], server.clock.instant().plusSeconds(1));
    }
    server.clock.advance(Duration.ofSeconds(2));
    byte[] live = TestServer.bytes(16);
    server.mailboxes().send(TestServer.sendTo(box, live, 1024).build());
    try (OwnerStream owner = new OwnerStream(server).subscribe(box)) {
      assertArrayEquals(live, owner.take(1).get(0).getEnvelope().getId().toByteArray());
    }
  }

  @Test
  void writesFinishingOutOfOrderAreDeliveredOnceEachInMailboxOrder() throws Exception {
    TestServer.Box box = server.createMailbox();
    TestServer.Box other = server.createMailbox();
    int threads = 8;
    int perThread = 60;
    try (OwnerStream owner = new OwnerStream(server).subscribe(box)) {
      ExecutorService pool = Executors.newFixedThreadPool(threads);
      List<Future<?>> sends = new ArrayList<>();
      for (int t = 0; t < threads; t++) {
        int base = t * perThread;
        sends.add(pool.submit(() -> {
          for (int i = 0; i < perThread; i++) {
            server.mailboxes().send(TestServer.sendTo(box, numbered(base + i), 1024).build());
            // Interleave writes to another mailbox, whose positions come from the same counter.
            server.mailboxes().send(TestServer.sendTo(other, numbered(-1), 1024).build());
          }
        }));
      }
      List<Delivery> got = new ArrayList<>();
      while (got.size() < threads * perThread) {
        List<Delivery> batch = owner.take(1);
        got.addAll(batch);
        batch.forEach(owner::ack);
      }
      for (Future<?> f : sends) {
        f.get();
      }
      pool.shutdown();
      Set<Integer> seen = new HashSet<>();
      long last = 0;
      for (Delivery d : got) {
        assertTrue(d.getDeliveryId() > last, "deliveries must come in mailbox order");
        last = d.getDeliveryId();
        assertTrue(seen.add(number(d)), "delivered twice: " + number(d));
      }
      assertEquals(threads * perThread, seen.size());
      assertTrue(owner.drain(Duration.ofMillis(200)).isEmpty(), "nothing beyond what was sent");
    }
  }

  @Test
  void envelopesBeyondTheHandoffBufferStillArriveInOrderOnceTheOwnerAcks() throws Exception {
    TestServer.Box box = server.createMailbox();
    int count = (int) (3 * ReceiveStream.HANDOFF_BYTES / 16384);
    try (OwnerStream owner = new OwnerStream(server).subscribe(box)) {
      // The owner acks nothing yet: the window fills, the rest is buffered or left to the store.
      for (int i = 0; i < count; i++) {
        server.mailboxes().send(TestServer.sendTo(box, numbered(i), 16384).build());
      }
      List<Delivery> got = new ArrayList<>(owner.take(ReceiveStream.WINDOW));
      assertTrue(owner.drain(Duration.ofMillis(100)).isEmpty(), "no more than the window in flight");
      got.forEach(owner::ack);
      while (got.size() < count) {
        Delivery d = owner.take(1).get(0);
        got.add(d);
        owner.ack(d);
      }
      for (int i = 0; i < count; i++) {
        assertEquals(i, number(got.get(i)), "delivery " + i + " out of order");
      }
    }
  }

  @Test
  void confirmedAcksAreNotDeliveredAgainOnTheNextStream() throws Exception {
    TestServer.Box box = server.createMailbox();
    for (int i = 0; i < 5; i++) {
      server.mailboxes().send(TestServer.sendTo(box, numbered(i), 1024).build());
    }
    try (OwnerStream first = new OwnerStream(server).subscribeConfirmingAcks(box)) {
      List<Delivery> got = first.take(5);
      first.ack(got.get(0));
      first.ack(got.get(2));
      Set<Long> confirmed = new HashSet<>(first.takeAcknowledged(2));
      assertEquals(Set.of(got.get(0).getDeliveryId(), got.get(2).getDeliveryId()), confirmed);
    }
    try (OwnerStream second = new OwnerStream(server).subscribe(box)) {
      List<Integer> again = second.take(3).stream().map(ReceiveStreamTest::number).toList();
      assertEquals(List.of(1, 3, 4), again);
      assertTrue(second.drain(Duration.ofMillis(200)).isEmpty());
    }
  }
}
