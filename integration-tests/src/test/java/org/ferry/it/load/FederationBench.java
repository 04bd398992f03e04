package org.ferry.it.load;

import com.google.protobuf.ByteString;
import io.grpc.ManagedChannel;
import io.grpc.StatusRuntimeException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;
import java.util.function.IntFunction;
import org.ferry.proto.v1.ForwardRequest;
import org.ferry.proto.v1.MailboxesGrpc;
import org.ferry.proto.v1.RoutingKey;
import org.ferry.proto.v1.SendRequest;
import org.ferry.server.testing.Ports;

/**
 * Federation's cost (issue 11), against two server processes with fsync on, each figure next to
 * its same-server baseline from the same run:
 * <ul>
 *   <li>durable delivery rate: N items sent straight to mailboxes on B (baseline) vs N items
 *       forwarded through home server A to the same mailboxes, until B's owners have them all;
 *   <li>latency at a fixed offered load, send start to delivery at B's owner, both ways: the
 *       difference is the extra hop's cost;
 *   <li>a backlog of BACKLOG items queued at A while B is down, drained when B comes back, with
 *       live items forwarded at a fixed rate meanwhile (their latency during the drain).
 * </ul>
 *
 * <pre>integration-tests/bench.sh federation [N] [BACKLOG]</pre>
 */
public final class FederationBench {
  private static final int SENDERS = 32;
  private static final int MAILBOXES = 16;
  private static final int BODY = 1024;
  private static final int PACED_RATE = 200;
  private static final int PACED_SECONDS = 10;
  private static final int LIVE_RATE = 50;
  /** Budgets out of the way: the bench measures the path, not the rate limits. */
  private static final List<String> OPEN_BUDGETS = List.of(
      "--forward-rate", "1000000", "--peer-rate", "1000000", "--unknown-peers-rate", "1000000");

  private final Map<ByteString, Long> sentAt = new ConcurrentHashMap<>();
  private final AtomicLong delivered = new AtomicLong();
  private final List<Long> latencies = java.util.Collections.synchronizedList(new ArrayList<>());
  private volatile boolean recordLatency;
  private volatile boolean draining;
  /** During the drain: latencies of live items only, not of the backlog's. */
  private final java.util.Set<ByteString> live = ConcurrentHashMap.newKeySet();
  private final AtomicLong liveDelivered = new AtomicLong();

  private FederationBench() {}

  public static void main(String[] args) throws Exception {
    Path jar = Path.of(args[0]);
    Path work = Path.of(args[1]);
    int n = Integer.parseInt(args[2]);
    int backlog = Integer.parseInt(args[3]);
    new FederationBench().run(jar, work, n, backlog);
  }

  private void run(Path jar, Path work, int n, int backlog) throws Exception {
    ServerProcess.Command bCommand = ServerProcess.Command.fromJar(jar, work.resolve("b"), List.of("-Xmx1g"), OPEN_BUDGETS);
    ServerProcess.Command aCommand = ServerProcess.Command.fromJar(jar, work.resolve("a"), List.of("-Xmx1g"), OPEN_BUDGETS);
    int bPort = Ports.belowEphemeral("127.0.0.1");
    ServerProcess b = ServerProcess.start(bCommand, bPort);
    ServerProcess a = ServerProcess.start(aCommand, Ports.belowEphemeral("127.0.0.1"));
    ManagedChannel toA = LoadClient.channel(a.address());
    ManagedChannel toB = LoadClient.channel(b.address());
    List<LoadClient.Mailbox> mailboxes = new ArrayList<>();
    for (int i = 0; i < MAILBOXES; i++) {
      mailboxes.add(LoadClient.createMailbox(toB));
    }
    List<Forwarder> forwarders = new ArrayList<>();
    for (int i = 0; i < SENDERS; i++) {
      forwarders.add(Forwarder.create(toA));
    }
    RoutingKey key = forwarders.get(0).routingKey(toA, b.address());
    final ServerProcess[] bNow = {b};
    List<Receiver> receivers = new ArrayList<>();
    for (int i = 0; i < 4; i++) {
      List<LoadClient.Mailbox> mine = new ArrayList<>();
      for (int m = i; m < MAILBOXES; m += 4) {
        mine.add(mailboxes.get(m));
      }
      receivers.add(new Receiver(() -> bNow[0].address(), mine, d -> {
        ByteString id = d.getEnvelope().getId();
        Long at = sentAt.remove(id);
        if (at != null) {
          boolean wasLive = live.remove(id);
          if (wasLive) {
            liveDelivered.incrementAndGet();
          }
          if (recordLatency && (live.isEmpty() && !draining || wasLive)) {
            latencies.add(System.nanoTime() - at);
          }
          delivered.incrementAndGet();
        }
      }));
    }
    IntFunction<Runnable> direct = i -> () -> {
      byte[] id = LoadClient.noise(16);
      SendRequest r = mailboxes.get(i % MAILBOXES).send(id, LoadClient.noise(BODY));
      sentAt.put(ByteString.copyFrom(id), System.nanoTime());
      MailboxesGrpc.newBlockingStub(toB).withDeadlineAfter(30, TimeUnit.SECONDS).send(r);
    };
    // Forwarded through A; with isLive, also counted among the live items of the drain phase.
    java.util.function.Function<Boolean, IntFunction<Runnable>> forwarding = isLive -> i -> () -> {
      byte[] id = LoadClient.noise(16);
      Forwarder f = forwarders.get(i % SENDERS);
      ForwardRequest r = f.request(bNow[0].address(), key, mailboxes.get(i % MAILBOXES), id, LoadClient.noise(BODY));
      if (isLive) {
        live.add(ByteString.copyFrom(id));
      }
      sentAt.put(ByteString.copyFrom(id), System.nanoTime());
      f.forward(toA, r);
    };
    IntFunction<Runnable> forwarded = forwarding.apply(false);
    IntFunction<Runnable> forwardedLive = forwarding.apply(true);
    // Warm-up: JIT, connections, A's lane to B.
    rate(2000, direct);
    rate(2000, forwarded);
    System.out.printf(Locale.ROOT, "federation: two server processes on loopback, fsync on, %d senders, %d mailboxes on B, %d-byte bodies%n",
        SENDERS, MAILBOXES, BODY);
    double[] same = new double[3];
    double[] cross = new double[3];
    for (int round = 0; round < 3; round++) {
      same[round] = rate(n, direct);
      cross[round] = rate(n, forwarded);
    }
    double s = DeliveryBench.median(same);
    double c = DeliveryBench.median(cross);
    System.out.printf(Locale.ROOT, "  same-server durable delivery (baseline), median of 3: %8.0f items/s %s%n", s, Arrays.toString(round(same)));
    System.out.printf(Locale.ROOT, "  cross-server through A, median of 3:                  %8.0f items/s %s  = %.0f%% of baseline%n",
        c, Arrays.toString(round(cross)), 100 * c / s);
    long[] sameLatency = paced(direct);
    long[] crossLatency = paced(forwarded);
    System.out.printf(Locale.ROOT, "  latency at %d items/s, send to delivery: same-server p50 %.2f ms p99 %.2f ms; cross-server p50 %.2f ms p99 %.2f ms%n",
        PACED_RATE, ms(pct(sameLatency, 50)), ms(pct(sameLatency, 99)), ms(pct(crossLatency, 50)), ms(pct(crossLatency, 99)));
    System.out.printf(Locale.ROOT, "  added by the extra hop: p50 %+.2f ms, p99 %+.2f ms%n",
        ms(pct(crossLatency, 50) - pct(sameLatency, 50)), ms(pct(crossLatency, 99) - pct(sameLatency, 99)));

    // The backlog: B down, BACKLOG items queued at A, then B back, with live items meanwhile.
    b.kill();
    long q0 = System.nanoTime();
    sendAll(backlog, forwarded); // B is down: nothing is delivered yet
    double queueRate = backlog / ((System.nanoTime() - q0) / 1e9);
    long before = delivered.get();
    draining = true;
    bNow[0] = ServerProcess.start(bCommand, bPort);
    long d0 = System.nanoTime();
    recordLatency = true;
    latencies.clear();
    AtomicInteger sentLive = new AtomicInteger();
    Thread liveTraffic = new Thread(() -> {
      long next = System.nanoTime();
      while (!Thread.currentThread().isInterrupted()) {
        next += TimeUnit.SECONDS.toNanos(1) / LIVE_RATE;
        long wait = next - System.nanoTime();
        if (wait > 0) {
          LockSupport.parkNanos(wait);
        }
        try {
          forwardedLive.apply(sentLive.get()).run();
          sentLive.incrementAndGet();
        } catch (StatusRuntimeException e) {
          // Counted as not sent.
        }
      }
    }, "live");
    liveTraffic.start();
    long deadline = System.nanoTime() + TimeUnit.MINUTES.toNanos(30);
    while (delivered.get() - liveDelivered.get() - before < backlog && System.nanoTime() < deadline) {
      LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(50));
    }
    double drained = (delivered.get() - liveDelivered.get() - before) / ((System.nanoTime() - d0) / 1e9);
    liveTraffic.interrupt();
    liveTraffic.join();
    recordLatency = false;
    long[] liveLatency = latencies.stream().mapToLong(Long::longValue).sorted().toArray();
    System.out.printf(Locale.ROOT, "  backlog: %,d items queued at A while B was down at %.0f items/s; drained after B came back at %.0f items/s (%.0f%% of the same-server baseline)%n",
        backlog, queueRate, drained, 100 * drained / s);
    System.out.printf(Locale.ROOT, "  live items during the drain (%d/s offered, %d sent): delivered p50 %.0f ms, p99 %.0f ms after sending%n",
        LIVE_RATE, sentLive.get(), ms(pct(liveLatency, 50)), ms(pct(liveLatency, 99)));
    receivers.forEach(Receiver::close);
    toA.shutdownNow();
    toB.shutdownNow();
    a.close();
    bNow[0].close();
  }

  /** Sends {@code n} items from SENDERS threads and returns items/s until all were delivered. */
  private double rate(int n, IntFunction<Runnable> send) throws InterruptedException {
    long before = delivered.get();
    long t0 = System.nanoTime();
    sendAll(n, send);
    long deadline = System.nanoTime() + TimeUnit.MINUTES.toNanos(10);
    while (delivered.get() - before < n && System.nanoTime() < deadline) {
      LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(2));
    }
    if (delivered.get() - before < n) {
      throw new IllegalStateException("only " + (delivered.get() - before) + " of " + n + " delivered");
    }
    return n / ((System.nanoTime() - t0) / 1e9);
  }

  private static void sendAll(int n, IntFunction<Runnable> send) throws InterruptedException {
    AtomicInteger next = new AtomicInteger();
    CountDownLatch done = new CountDownLatch(SENDERS);
    for (int t = 0; t < SENDERS; t++) {
      Thread thread = new Thread(() -> {
        int i;
        while ((i = next.getAndIncrement()) < n) {
          try {
            send.apply(i).run();
          } catch (StatusRuntimeException e) {
            throw new IllegalStateException("a send failed: " + e.getStatus(), e);
          }
        }
        done.countDown();
      }, "sender-" + t);
      thread.setDaemon(true);
      thread.start();
    }
    if (!done.await(30, TimeUnit.MINUTES)) {
      throw new IllegalStateException("senders did not finish");
    }
  }

  /** Open-loop sends at PACED_RATE for PACED_SECONDS; send-to-delivery latencies, sorted. */
  private long[] paced(IntFunction<Runnable> send) throws InterruptedException {
    latencies.clear();
    recordLatency = true;
    int total = PACED_RATE * PACED_SECONDS;
    long before = delivered.get();
    java.util.concurrent.ExecutorService pool = java.util.concurrent.Executors.newFixedThreadPool(16);
    long start = System.nanoTime();
    for (int i = 0; i < total; i++) {
      long at = start + i * (TimeUnit.SECONDS.toNanos(1) / PACED_RATE);
      long wait = at - System.nanoTime();
      if (wait > 0) {
        LockSupport.parkNanos(wait);
      }
      int k = i;
      pool.execute(() -> send.apply(k).run());
    }
    pool.shutdown();
    pool.awaitTermination(5, TimeUnit.MINUTES);
    long deadline = System.nanoTime() + TimeUnit.MINUTES.toNanos(2);
    while (delivered.get() - before < total && System.nanoTime() < deadline) {
      LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(5));
    }
    recordLatency = false;
    synchronized (latencies) {
      return latencies.stream().mapToLong(Long::longValue).sorted().toArray();
    }
  }

  private static long pct(long[] sorted, double p) {
    if (sorted.length == 0) {
      return 0;
    }
    return sorted[Math.min(sorted.length - 1, (int) Math.ceil(p / 100 * sorted.length) - 1)];
  }

  private static double ms(long nanos) {
    return nanos / 1e6;
  }

  private static long[] round(double[] rates) {
    return Arrays.stream(rates).mapToLong(Math::round).toArray();
  }
}
