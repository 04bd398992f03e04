package org.ferry.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.lang.management.ManagementFactory;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.awaitility.Awaitility;
import org.ferry.it.load.LoadClient;
import org.ferry.it.load.Receiver;
import org.ferry.proto.ErrorReasons;
import org.ferry.proto.v1.MailboxesGrpc;
import org.ferry.sdk.FerryClient;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * One attacker floods a mailbox and makes mailboxes as fast as it can, over real TLS. The quotas
 * hold, the server's heap stays bounded, and an honest pair keeps talking throughout.
 */
class FloodTest {
  private static final int QUOTA = 300;
  private static final int BURST = 20;
  private static final double RATE = 5;

  @TempDir Path dir;

  private FerryClient client(String name) {
    return TestClients.open(dir, name);
  }

  @Test
  void quotasHoldHeapStaysBoundedAndAnHonestPairKeepsTalkingDuringAFlood() throws Exception {
    try (RunningServer server = RunningServer.configured(dir.resolve("server"), b -> b
            .mailboxQuota(QUOTA, 64L << 20)
            .storageBudget(256L << 20)
            .mailboxCreationRate(RATE, BURST));
        FerryClient alice = client("alice");
        FerryClient bob = client("bob")) {
      alice.initialize(server.address());
      bob.initialize(server.address());
      bob.acceptInvitation(alice.createInvitation("bob").uri(), "alice");
      ManagedChannel channel = LoadClient.channel(server.address());
      LoadClient.Mailbox target = LoadClient.createMailbox(channel);
      long heapBefore = heapAfterGc();

      CountDownLatch stop = new CountDownLatch(1);
      AtomicLong accepted = new AtomicLong();
      AtomicLong refusedFull = new AtomicLong();
      AtomicLong created = new AtomicLong();
      AtomicLong rateLimited = new AtomicLong();
      ExecutorService flood = Executors.newFixedThreadPool(9);
      List<Future<?>> attackers = new ArrayList<>();
      long floodStart = System.nanoTime();
      for (int i = 0; i < 8; i++) {
        attackers.add(flood.submit(() -> {
          MailboxesGrpc.MailboxesBlockingStub stub = MailboxesGrpc.newBlockingStub(channel);
          byte[] body = LoadClient.random(16384);
          while (stop.getCount() > 0) {
            try {
              stub.send(target.send(LoadClient.random(16), body));
              accepted.incrementAndGet();
            } catch (StatusRuntimeException e) {
              assertEquals(Status.Code.RESOURCE_EXHAUSTED, e.getStatus().getCode());
              assertEquals(ErrorReasons.MAILBOX_FULL, ErrorReasons.of(e).orElseThrow());
              refusedFull.incrementAndGet();
            }
          }
          return null;
        }));
      }
      attackers.add(flood.submit(() -> {
        while (stop.getCount() > 0) {
          try {
            LoadClient.createMailbox(channel);
            created.incrementAndGet();
          } catch (StatusRuntimeException e) {
            assertEquals(ErrorReasons.RATE_LIMITED, ErrorReasons.of(e).orElseThrow());
            rateLimited.incrementAndGet();
          }
        }
        return null;
      }));

      // Meanwhile Alice and Bob talk, each message arriving in order.
      for (int round = 0; round < 5; round++) {
        bob.send("alice", "ping " + round);
        assertEquals(List.of("ping " + round), texts(alice));
        alice.send("bob", "pong " + round);
        assertEquals(List.of("pong " + round), texts(bob));
      }
      Awaitility.await().atMost(Duration.ofSeconds(60)).until(() -> refusedFull.get() > 1000 && rateLimited.get() > 100);
      long heapDuring = heapAfterGc();
      stop.countDown();
      for (Future<?> f : attackers) {
        f.get(30, TimeUnit.SECONDS);
      }
      double seconds = (System.nanoTime() - floodStart) / 1e9;
      flood.shutdown();

      assertEquals(QUOTA, accepted.get(), "the flooded mailbox took exactly its quota");
      assertTrue(created.get() <= BURST + RATE * seconds + 1,
          created.get() + " mailboxes made in " + seconds + " s");
      assertTrue(heapDuring - heapBefore < (64L << 20),
          "heap grew by " + ((heapDuring - heapBefore) >> 20) + " MiB during the flood");

      // Everything accepted is there for the mailbox's owner, and nothing more.
      Set<String> drained = ConcurrentHashMap.newKeySet();
      try (Receiver owner = new Receiver(server::address, List.of(target),
          d -> drained.add(java.util.HexFormat.of().formatHex(d.getEnvelope().getId().toByteArray())))) {
        Awaitility.await().atMost(Duration.ofSeconds(30)).until(() -> drained.size() == QUOTA);
      }
      channel.shutdownNow();
    }
  }

  private static List<String> texts(FerryClient c) {
    List<String> got = new ArrayList<>();
    c.receive(Duration.ofMillis(300), m -> got.add(m.text()));
    return got;
  }

  private static long heapAfterGc() {
    System.gc();
    return ManagementFactory.getMemoryMXBean().getHeapMemoryUsage().getUsed();
  }
}
