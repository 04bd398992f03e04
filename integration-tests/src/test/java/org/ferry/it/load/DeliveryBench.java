package org.ferry.it.load;

import io.grpc.ManagedChannel;
import io.grpc.stub.StreamObserver;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.ferry.proto.v1.Delivery;
import org.ferry.proto.v1.MailboxesGrpc;
import org.ferry.proto.v1.SendStreamRequest;
import org.ferry.proto.v1.SendStreamResponse;

/**
 * The delivery benchmarks of docs/BENCHMARKS.md ("Delivery (issue 10)"): one fresh
 * {@code ferry server} with open limits and its normal durable (synced) sends, 1 KiB random
 * bodies, 16 concurrent senders on one connection.
 *
 * <ul>
 *   <li><b>online</b>: N envelopes to one mailbox whose owner is connected (a {@link Receiver}
 *       on its own connection, acking each); from the first send to the owner having all N.
 *   <li><b>offline</b>: N envelopes to a mailbox whose owner is away (store), then the owner
 *       connects (TLS, subscribe) and receives all N (drain); store+drain = N / (store + drain).
 *   <li><b>latency</b>: send start to delivery at a fixed offered load (open loop: each send's
 *       start time is its slot in the schedule, so a late send counts its wait), owner connected.
 *   <li><b>idle owners</b>: the send rate with 1,000 connected idle receive streams against the
 *       same with none, in alternating rounds.
 *   <li><b>accept</b>: 64 senders against raw rocksdbjni synced puts by 64 threads.
 * </ul>
 *
 * <p>Baselines measured in the same run: raw RocksDB synced puts (16 and 64 threads) and, in
 * {@code compare} mode, Prosody's own load run ({@code run.sh N}), interleaved round by round
 * with Ferry's. Every figure is a median over rounds and is printed with its ratio.
 *
 * <pre>java -cp ... org.ferry.it.load.DeliveryBench SERVER_JAR WORK_DIR online|delivery|compare N [PROSODY_RUN]</pre>
 *
 * <p>{@code -Dferry.bench.rounds} (3), {@code -Dferry.bench.warmup} (seconds, 20),
 * {@code -Dferry.bench.rate} (paced msg/s, 1000), {@code -Dferry.bench.idle} (streams, 1000),
 * {@code -Dferry.bench.jfr=FILE} (a JFR recording of the server over the measured part),
 * {@code -Dferry.bench.serverJvm="OPTIONS"} (more JVM options for the server, for profilers),
 * {@code -Dferry.bench.serverArgs="OPTIONS"} (more {@code ferry server} options, such as
 * {@code --metrics-listen 127.0.0.1:9464} to measure what metrics cost).
 */
public final class DeliveryBench implements AutoCloseable {
  private static final int SENDERS = 16;
  /**
   * How the senders send: "stream" (default: one SendStream on the connection with SENDERS
   * sends in flight) or "unary" (SENDERS threads, each a blocking Send call at a time).
   */
  static final String API = System.getProperty("ferry.bench.api", "stream");
  private static final int BODY = Benchmarks.BODY;
  private static final int ROUNDS = Integer.getInteger("ferry.bench.rounds", 3);
  private static final long WARMUP_MS = Integer.getInteger("ferry.bench.warmup", 20) * 1000L;
  private static final long WARMUP_SENDS = 50_000;
  private static final int PACED_RATE = Integer.getInteger("ferry.bench.rate", 1000);
  private static final long PACED_MS = 10_000;
  private static final int IDLE_STREAMS = Integer.getInteger("ferry.bench.idle", 1000);
  private static final int IDLE_CONNECTIONS = Math.max(1, IDLE_STREAMS / 10);
  private static final long RATE_LEAD_MS = 1000;
  private static final long RATE_MS = 4000;
  private static final int IDLE_ROUNDS = 5;

  private final Path work;
  private final int n;
  private final ServerProcess server;
  /** The senders' one connection. */
  private final ManagedChannel channel;
  private final ExecutorService senders = Executors.newFixedThreadPool(SENDERS, r -> {
    Thread t = new Thread(r, "sender");
    t.setDaemon(true);
    return t;
  });

  private DeliveryBench(Path serverJar, Path work, int n) throws IOException {
    this.work = work;
    this.n = n;
    List<String> jvm = new ArrayList<>(List.of("-Xmx1g"));
    // For profilers: -Dferry.bench.serverJvm="-XX:+PreserveFramePointer ..."
    String extra = System.getProperty("ferry.bench.serverJvm", "").strip();
    if (!extra.isEmpty()) {
      jvm.addAll(List.of(extra.split("\\s+")));
    }
    // More server options, such as -Dferry.bench.serverArgs="--metrics-listen 127.0.0.1:9464".
    List<String> serverArgs = new ArrayList<>(Benchmarks.OPEN_LIMITS);
    String more = System.getProperty("ferry.bench.serverArgs", "").strip();
    if (!more.isEmpty()) {
      serverArgs.addAll(List.of(more.split("\\s+")));
    }
    this.server = ServerProcess.start(ServerProcess.Command.fromJar(
        serverJar, work.resolve("server"), jvm, serverArgs), 0);
    System.out.printf(Locale.ROOT, "delivery: server pid %d, JVM options %s, server options %s%n",
        server.pid(), jvm, serverArgs);
    this.channel = LoadClient.channel(server.address());
  }

  public static void main(String[] args) throws Exception {
    if (args.length < 4 || !List.of("online", "delivery", "compare").contains(args[2])
        || (args[2].equals("compare") && args.length < 5)) {
      System.err.println("usage: DeliveryBench SERVER_JAR WORK_DIR online|delivery|compare N [PROSODY_RUN]");
      System.exit(2);
    }
    String mode = args[2];
    int n = Integer.parseInt(args[3]);
    Path prosody = mode.equals("compare") ? Path.of(args[4]) : null;
    System.out.printf(Locale.ROOT, "delivery: %d cores, java %s, %s; N=%d, %d rounds, %d senders on 1 connection, "
            + "1 KiB random bodies, synced writes, sends by %s; load average %s%n", Runtime.getRuntime().availableProcessors(),
        System.getProperty("java.version"), Instant.now(), n, ROUNDS, SENDERS,
        API.equals("stream") ? "SendStream (" + SENDERS + " in flight)" : "unary Send (" + SENDERS + " threads)",
        loadAverage());
    try (DeliveryBench b = new DeliveryBench(Path.of(args[0]), Path.of(args[1]), n)) {
      b.run(mode, prosody);
    }
    // Others share this machine: the load they added is part of the reading.
    System.out.printf(Locale.ROOT, "delivery: done, %s; load average %s%n", Instant.now(), loadAverage());
  }

  @Override
  public void close() {
    channel.shutdownNow();
    senders.shutdownNow();
    server.close();
  }

  private void run(String mode, Path prosodyRun) throws Exception {
    long warmEnd = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(WARMUP_MS);
    int warmRounds = 0;
    long warmSends = 0;
    // A fresh JVM needs tens of thousands of calls before its JIT has compiled the hot paths:
    // the same workload, discarded, for at least WARMUP_MS and WARMUP_SENDS.
    do {
      online();
      warmSends += n;
      if (!mode.equals("online")) {
        offline();
        warmSends += n;
      }
      warmRounds++;
    } while (System.nanoTime() < warmEnd || warmSends < WARMUP_SENDS);
    System.out.printf(Locale.ROOT, "delivery: warmed up with %d online%s rounds of %d (discarded)%n",
        warmRounds, mode.equals("online") ? "" : " and offline", n);
    Recording jfr = Recording.start(server);

    double[] online = new double[ROUNDS];
    double[] store = new double[ROUNDS];
    double[] drain = new double[ROUNDS];
    double[] storeDrain = new double[ROUNDS];
    List<Prosody> prosody = new ArrayList<>();
    for (int r = 0; r < ROUNDS; r++) {
      if (prosodyRun != null) {
        Prosody p = Prosody.run(prosodyRun, n);
        prosody.add(p);
        System.out.printf(Locale.ROOT, "round %d: prosody online %,.0f msg/s; store %,.0f, drain %,.0f, end-to-end %,.0f msg/s%n",
            r + 1, p.online(), p.store(), p.drain(), p.endToEnd());
      }
      Online o = online();
      online[r] = o.rate();
      System.out.printf(Locale.ROOT, "round %d: ferry online %,.0f msg/s (all %d sends acknowledged after %.2f s, all delivered after %.2f s)%n",
          r + 1, o.rate(), n, o.sentSeconds(), o.deliveredSeconds());
      if (!mode.equals("online")) {
        Offline f = offline();
        store[r] = n / f.storeSeconds();
        drain[r] = n / f.drainSeconds();
        storeDrain[r] = n / (f.storeSeconds() + f.drainSeconds());
        System.out.printf(Locale.ROOT, "round %d: ferry store %,.0f msg/s (%.2f s), drain %,.0f msg/s (%.2f s, connect included), store+drain %,.0f msg/s%n",
            r + 1, store[r], f.storeSeconds(), drain[r], f.drainSeconds(), storeDrain[r]);
      }
    }
    if (mode.equals("online")) {
      jfr.stop();
      System.out.printf(Locale.ROOT, "delivery: online, median of %d rounds: %,.0f msg/s%n", ROUNDS, median(online));
      return;
    }
    Latency latency = latency();
    System.out.printf(Locale.ROOT, "latency: paced at %d msg/s (offered %,.0f msg/s): send start to delivery p50 %.2f ms, p99 %.2f ms, max %.2f ms (%d samples)%n",
        PACED_RATE, latency.offered(), latency.p50(), latency.p99(), latency.max(), latency.samples());
    IdleOwners idle = idleOwners();
    double raw16 = Benchmarks.rawSyncedPuts(work.resolve("raw-16"), SENDERS);
    double raw64 = Benchmarks.rawSyncedPuts(work.resolve("raw-64"), 64);
    double accept64 = Benchmarks.sendRate(server, 64, Benchmarks.MEASURE_MS);
    jfr.stop();
    System.out.printf(Locale.ROOT, "accept: raw rocksdb synced puts: 16 threads %,.0f/s, 64 threads %,.0f/s; ferry durable sends, 64 senders %,.0f/s%n",
        raw16, raw64, accept64);

    Table t = new Table();
    String each = String.format(Locale.ROOT, "median of %d rounds of N=%,d", ROUNDS, n);
    if (prosodyRun != null) {
      Prosody p = Prosody.median(prosody);
      t.row("online delivery: 16 senders on 1 connection -> connected owner (" + each + ")",
          online, "Prosody online", p.online(), 2.0);
      t.row("offline store: same senders, owner away", store, "Prosody store", p.store(), Double.NaN);
      t.row("drain: owner connects (TLS, subscribe) until it has all N", drain, "Prosody drain", p.drain(), Double.NaN);
      t.row("store+drain: N / (store time + drain time)", storeDrain, "Prosody end-to-end", p.endToEnd(), 3.0);
    }
    t.row("online delivery vs raw rocksdb synced puts, 16 threads", online, "raw puts, 16 threads", raw16, Double.NaN);
    t.row("offline store vs raw rocksdb synced puts, 16 threads", store, "raw puts, 16 threads", raw16, Double.NaN);
    t.latency(String.format(Locale.ROOT, "latency, paced %,d msg/s open loop, owner connected: p50 / p99", PACED_RATE), latency);
    t.row("durable accept, 64 senders (8 connections)", accept64, "raw puts, 64 threads", raw64, accept64 / raw64, 0.50);
    t.row(String.format(Locale.ROOT, "send rate, 16 senders, with %,d idle receive streams (%d connections) vs none "
        + "(medians of %d alternating rounds; ratio: median of the rounds' ratios)", IDLE_STREAMS, IDLE_CONNECTIONS, IDLE_ROUNDS),
        idle.with(), "no idle streams", idle.without(), idle.ratio(), 0.90);
    t.print();
  }

  // ---- the workloads ----

  private record Online(double rate, double sentSeconds, double deliveredSeconds) {}

  /** One envelope through first: the owner is subscribed and its stream is open. */
  private void primeOwner(LoadClient.Mailbox box, Tally tally) throws Exception {
    MailboxesGrpc.newBlockingStub(channel).send(box.send(LoadClient.noise(16), body(System.nanoTime())));
    tally.await(1, Duration.ofSeconds(60));
  }

  /** N envelopes to a connected owner; from the first send to the owner having them all. */
  private Online online() throws Exception {
    LoadClient.Mailbox box = LoadClient.createMailbox(channel);
    Tally tally = new Tally();
    try (Receiver owner = new Receiver(server::address, List.of(box), tally)) {
      primeOwner(box, tally);
      Load load = new Load(box, n, 0);
      long sent = load.awaitSent(bound(n));
      long delivered = tally.await(1 + n, bound(n));
      checkOneStream(owner);
      double seconds = (delivered - load.startedAt) / 1e9;
      return new Online(n / seconds, (sent - load.startedAt) / 1e9, seconds);
    }
  }

  private record Offline(double storeSeconds, double drainSeconds) {}

  /** N envelopes with the owner away; then the owner connects and receives them. */
  private Offline offline() throws Exception {
    LoadClient.Mailbox box = LoadClient.createMailbox(channel);
    Load load = new Load(box, n, 0);
    long stored = load.awaitSent(bound(n));
    Tally tally = new Tally();
    long connecting = System.nanoTime();
    try (Receiver owner = new Receiver(server::address, List.of(box), tally)) {
      long drained = tally.await(n, bound(n));
      checkOneStream(owner);
      return new Offline((stored - load.startedAt) / 1e9, (drained - connecting) / 1e9);
    }
  }

  private record Latency(double offered, double p50, double p99, double max, int samples) {}

  /** Open-loop sends at a fixed rate to a connected owner: a lead-in, then a measured window. */
  private Latency latency() throws Exception {
    LoadClient.Mailbox box = LoadClient.createMailbox(channel);
    Tally tally = new Tally();
    try (Receiver owner = new Receiver(server::address, List.of(box), tally)) {
      primeOwner(box, tally);
      long lead = TimeUnit.MILLISECONDS.toNanos(RATE_LEAD_MS);
      tally.recordFrom = System.nanoTime() + lead;
      Load load = new Load(box, Long.MAX_VALUE, 1_000_000_000L / PACED_RATE);
      load.runFor(RATE_LEAD_MS + PACED_MS);
      long sent = load.stop();
      tally.await(1 + sent, Duration.ofSeconds(60));
      checkOneStream(owner);
      long[] sorted = tally.latencies.stream().mapToLong(Long::longValue).sorted().toArray();
      return new Latency(sorted.length / (PACED_MS / 1e3), pct(sorted, 0.50), pct(sorted, 0.99),
          sorted.length == 0 ? 0 : sorted[sorted.length - 1] / 1e6, sorted.length);
    }
  }

  private record IdleOwners(double with, double without, double ratio) {}

  /**
   * Send rate (owner away) with idle connected owners and without, alternating (A B B A A B ...)
   * so that drift (a growing store, a busy neighbour) falls on both sides. The ratio is the
   * median of the rounds' ratios: each compares two runs next to each other in time.
   */
  private IdleOwners idleOwners() throws Exception {
    List<LoadClient.Mailbox> boxes = new ArrayList<>();
    for (int i = 0; i < IDLE_STREAMS; i++) {
      boxes.add(LoadClient.createMailbox(channel));
    }
    double[] with = new double[IDLE_ROUNDS];
    double[] without = new double[IDLE_ROUNDS];
    double[] ratios = new double[IDLE_ROUNDS];
    for (int r = 0; r < IDLE_ROUNDS; r++) {
      for (boolean withStreams : r % 2 == 0 ? new boolean[] {false, true} : new boolean[] {true, false}) {
        if (withStreams) {
          IdleStreams open = new IdleStreams(server.address(), boxes, IDLE_CONNECTIONS, Duration.ofSeconds(120));
          try {
            with[r] = sendRate();
          } finally {
            open.close();
          }
        } else {
          without[r] = sendRate();
        }
      }
      ratios[r] = with[r] / without[r];
      System.out.printf(Locale.ROOT, "round %d: send rate with %,d idle receive streams %,.0f msg/s, without %,.0f msg/s: %.2f%n",
          r + 1, IDLE_STREAMS, with[r], without[r], ratios[r]);
    }
    return new IdleOwners(median(with), median(without), median(ratios));
  }

  /** Acknowledged sends per second by the 16 senders to a mailbox whose owner is away. */
  private double sendRate() throws Exception {
    Load load = new Load(LoadClient.createMailbox(channel), Long.MAX_VALUE, 0);
    load.runFor(RATE_LEAD_MS);
    long before = load.sent.get();
    long t0 = System.nanoTime();
    load.runFor(RATE_MS);
    long after = load.sent.get();
    long t1 = System.nanoTime();
    load.stop();
    return (after - before) / ((t1 - t0) / 1e9);
  }

  /**
   * The 16 senders on the one connection, sending to one mailbox: {@code count} envelopes, or
   * until stopped; back to back, or each at its slot in a fixed schedule ({@code intervalNanos}
   * apart). Every body starts with its send start (the slot, when paced) as System.nanoTime.
   */
  private final class Load {
    final long startedAt;
    final AtomicLong sent = new AtomicLong();
    private final AtomicLong lastSent = new AtomicLong();
    private final CountDownLatch stop = new CountDownLatch(1);
    private final List<Future<?>> workers = new ArrayList<>();

    Load(LoadClient.Mailbox box, long count, long intervalNanos) {
      AtomicLong left = new AtomicLong(count);
      CountDownLatch go = new CountDownLatch(1);
      long now = System.nanoTime();
      AtomicLong slot = new AtomicLong(now);
      if (API.equals("stream")) {
        workers.add(senders.submit(() -> {
          go.await();
          streamed(box, left, slot, intervalNanos);
          return null;
        }));
      }
      for (int i = 0; i < (API.equals("stream") ? 0 : SENDERS); i++) {
        workers.add(senders.submit(() -> {
          go.await();
          var stub = MailboxesGrpc.newBlockingStub(channel);
          while (stop.getCount() > 0 && left.getAndDecrement() > 0) {
            long start = nextStart(slot, intervalNanos);
            stub.send(box.send(LoadClient.noise(16), body(start)));
            sent.incrementAndGet();
            lastSent.accumulateAndGet(System.nanoTime(), Math::max);
          }
          return null;
        }));
      }
      startedAt = System.nanoTime();
      go.countDown();
    }

    /** Paced: waits for the next slot of the schedule and returns it; else now. */
    private long nextStart(AtomicLong slot, long intervalNanos) {
      if (intervalNanos <= 0) {
        return System.nanoTime();
      }
      long start = slot.addAndGet(intervalNanos);
      for (long wait; (wait = start - System.nanoTime()) > 0; ) {
        LockSupport.parkNanos(wait);
      }
      return start;
    }

    /** One SendStream with SENDERS sends in flight; returns once every send was answered. */
    private void streamed(LoadClient.Mailbox box, AtomicLong left, AtomicLong slot, long intervalNanos)
        throws Exception {
      Semaphore room = new Semaphore(SENDERS);
      CompletableFuture<Void> ended = new CompletableFuture<>();
      AtomicLong failed = new AtomicLong();
      StreamObserver<SendStreamRequest> requests = MailboxesGrpc.newStub(channel).sendStream(new StreamObserver<>() {
        @Override
        public void onNext(SendStreamResponse r) {
          if (r.getCode() != 0) {
            failed.incrementAndGet();
          }
          sent.incrementAndGet();
          lastSent.accumulateAndGet(System.nanoTime(), Math::max);
          room.release();
        }

        @Override
        public void onError(Throwable t) {
          ended.completeExceptionally(t);
        }

        @Override
        public void onCompleted() {
          ended.complete(null);
        }
      });
      long id = 0;
      while (stop.getCount() > 0 && left.getAndDecrement() > 0) {
        long start = nextStart(slot, intervalNanos);
        room.acquire();
        requests.onNext(SendStreamRequest.newBuilder().setRequestId(id++)
            .setSend(box.send(LoadClient.noise(16), body(start))).build());
      }
      requests.onCompleted();
      ended.get(60, TimeUnit.SECONDS);
      if (failed.get() > 0) {
        throw new IllegalStateException(failed.get() + " sends were refused");
      }
    }

    /** Lets the senders run for a while (a timed wait on a latch nobody counts down early). */
    void runFor(long ms) throws InterruptedException {
      stop.await(ms, TimeUnit.MILLISECONDS);
    }

    /** Waits for the senders to finish their count; returns when the last send was acknowledged. */
    long awaitSent(Duration bound) throws Exception {
      long deadline = System.nanoTime() + bound.toNanos();
      for (Future<?> w : workers) {
        try {
          w.get(Math.max(1, deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
        } catch (TimeoutException e) {
          stop.countDown();
          throw new TimeoutException("senders did not finish within " + bound + "; " + sent.get() + " sent");
        } catch (ExecutionException e) {
          stop.countDown();
          throw new IllegalStateException("a send failed", e.getCause());
        }
      }
      return lastSent.get();
    }

    /** Stops the senders; returns how many envelopes were sent. */
    long stop() throws Exception {
      stop.countDown();
      awaitSent(Duration.ofSeconds(60));
      return sent.get();
    }
  }

  private static byte[] body(long sendStart) {
    byte[] body = LoadClient.noise(BODY);
    ByteBuffer.wrap(body).putLong(sendStart);
    return body;
  }

  private static Duration bound(int n) {
    return Duration.ofSeconds(60 + n / 100);
  }

  /** A reconnect would deliver unacknowledged envelopes again and make the count meaningless. */
  private static void checkOneStream(Receiver owner) {
    if (owner.streamsOpened() != 1) {
      throw new IllegalStateException("the owner's receive stream broke and reconnected");
    }
  }

  /**
   * Counts deliveries, notes when the last one arrived, and records send-start-to-delivery
   * latency for envelopes whose send started at or after {@link #recordFrom}.
   */
  private static final class Tally implements Receiver.Listener {
    final ConcurrentLinkedQueue<Long> latencies = new ConcurrentLinkedQueue<>();
    volatile long recordFrom = Long.MAX_VALUE;
    private final AtomicLong count = new AtomicLong();
    private volatile long lastAt;
    private volatile long wanted = Long.MAX_VALUE;

    @Override
    public void delivered(Delivery d) {
      long now = System.nanoTime();
      long sendStart = d.getEnvelope().getBody().asReadOnlyByteBuffer().getLong();
      if (sendStart >= recordFrom) {
        latencies.add(now - sendStart);
      }
      lastAt = now;
      if (count.incrementAndGet() >= wanted) {
        synchronized (this) {
          notifyAll();
        }
      }
    }

    /** Waits until {@code atLeast} deliveries have arrived; returns when the last one did. */
    synchronized long await(long atLeast, Duration bound) throws InterruptedException, TimeoutException {
      wanted = atLeast;
      long deadline = System.nanoTime() + bound.toNanos();
      while (count.get() < atLeast) {
        long left = deadline - System.nanoTime();
        if (left <= 0) {
          throw new TimeoutException("owner has " + count.get() + " of " + atLeast + " deliveries after " + bound);
        }
        TimeUnit.NANOSECONDS.timedWait(this, left);
      }
      wanted = Long.MAX_VALUE;
      return lastAt;
    }
  }

  // ---- Prosody, the peer baseline ----

  /** One run of Prosody's run.sh: msg/s online, store, drain and end-to-end. */
  record Prosody(double online, double store, double drain, double endToEnd) {
    private static final Pattern ONLINE = Pattern.compile(
        "prosody online:\\s*(\\d+)\\s+msgs? in\\s+([0-9.]+)\\s*s\\s*=\\s*([0-9.]+)\\s*msg/s", Pattern.CASE_INSENSITIVE);
    private static final Pattern OFFLINE = Pattern.compile(
        "prosody offline:\\s*store\\s+(\\d+)\\s+in\\s+([0-9.]+)\\s*s\\s*=\\s*([0-9.]+)\\s*msg/s\\s*;"
            + "\\s*drain\\s+([0-9.]+)\\s*msg/s\\s*;\\s*end-to-end\\s+([0-9.]+)\\s*msg/s", Pattern.CASE_INSENSITIVE);

    static Prosody run(Path script, int n) throws Exception {
      Process p = new ProcessBuilder("bash", script.toString(), Integer.toString(n)).redirectErrorStream(true).start();
      p.getOutputStream().close();
      CompletableFuture<String> out = CompletableFuture.supplyAsync(() -> {
        try {
          return new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
          throw new IllegalStateException(e);
        }
      });
      if (!p.waitFor(Math.max(300, n / 50), TimeUnit.SECONDS)) {
        p.descendants().forEach(ProcessHandle::destroy);
        p.destroy();
        throw new IllegalStateException("prosody run (" + script + " " + n + ") did not finish");
      }
      String text = out.get(30, TimeUnit.SECONDS);
      try {
        return parse(text, n);
      } catch (IllegalStateException e) {
        throw new IllegalStateException(e.getMessage() + " (exit " + p.exitValue() + "); its output:\n" + text, e);
      }
    }

    static Prosody parse(String text, int n) {
      Matcher on = ONLINE.matcher(text);
      Matcher off = OFFLINE.matcher(text);
      if (!on.find() || !off.find()) {
        throw new IllegalStateException("no 'prosody online: ...' and 'prosody offline: ...' lines from Prosody's run.sh");
      }
      if (Integer.parseInt(on.group(1)) != n || Integer.parseInt(off.group(1)) != n) {
        throw new IllegalStateException("Prosody ran " + on.group(1) + "/" + off.group(1) + " messages, not " + n);
      }
      // The rates from the times where they are given (the printed rates are rounded).
      return new Prosody(n / Double.parseDouble(on.group(2)), n / Double.parseDouble(off.group(2)),
          Double.parseDouble(off.group(4)), Double.parseDouble(off.group(5)));
    }

    static Prosody median(List<Prosody> runs) {
      return new Prosody(
          DeliveryBench.median(runs.stream().mapToDouble(Prosody::online).toArray()),
          DeliveryBench.median(runs.stream().mapToDouble(Prosody::store).toArray()),
          DeliveryBench.median(runs.stream().mapToDouble(Prosody::drain).toArray()),
          DeliveryBench.median(runs.stream().mapToDouble(Prosody::endToEnd).toArray()));
    }
  }

  // ---- output ----

  /** The summary, as a Markdown table: each figure, its baseline from this run, the ratio. */
  private static final class Table {
    private final List<String> rows = new ArrayList<>();

    void row(String figure, double[] rounds, String baselineName, double baseline, double target) {
      row(figure, median(rounds), baselineName, baseline, median(rounds) / baseline, target);
    }

    void row(String figure, double ferry, String baselineName, double baseline, double ratio, double target) {
      String verdict = Double.isNaN(target) ? "report"
          : String.format(Locale.ROOT, ">= %.2f: %s", target, ratio >= target ? "met" : "**not met**");
      rows.add(String.format(Locale.ROOT, "| %s | %,.0f msg/s | %s: %,.0f msg/s | **%.2f** | %s |",
          figure, ferry, baselineName, baseline, ratio, verdict));
    }

    void latency(String figure, Latency l) {
      rows.add(String.format(Locale.ROOT, "| %s | %.2f / %.2f ms (%,d samples, max %.1f ms) | | | report |",
          figure, l.p50(), l.p99(), l.samples(), l.max()));
    }

    void print() {
      System.out.println();
      System.out.println("| figure | Ferry | baseline (same run) | ratio | target |");
      System.out.println("|---|---|---|---|---|");
      rows.forEach(System.out::println);
    }
  }

  static double median(double[] values) {
    double[] sorted = values.clone();
    Arrays.sort(sorted);
    int m = sorted.length / 2;
    return sorted.length % 2 == 1 ? sorted[m] : (sorted[m - 1] + sorted[m]) / 2;
  }

  private static double pct(long[] sorted, double p) {
    return sorted.length == 0 ? 0 : sorted[(int) Math.min(sorted.length - 1, Math.floor(p * sorted.length))] / 1e6;
  }

  /** The 1, 5 and 15 minute load averages, where the system tells them. */
  private static String loadAverage() {
    try {
      String[] f = Files.readString(Path.of("/proc/loadavg")).split(" ");
      return f[0] + " " + f[1] + " " + f[2];
    } catch (IOException e) {
      return "unknown";
    }
  }

  // ---- profiling ----

  /** A JFR recording in the server process over the measured part, when -Dferry.bench.jfr=FILE asks for one. */
  private static final class Recording {
    private final ServerProcess server;
    private final Path file;

    private Recording(ServerProcess server, Path file) {
      this.server = server;
      this.file = file;
    }

    static Recording start(ServerProcess server) throws Exception {
      String file = System.getProperty("ferry.bench.jfr");
      if (file == null) {
        return new Recording(server, null);
      }
      Path path = Path.of(file).toAbsolutePath();
      Files.createDirectories(path.getParent());
      jcmd(server.pid(), "JFR.start", "name=bench", "settings=profile");
      return new Recording(server, path);
    }

    void stop() throws Exception {
      if (file != null) {
        jcmd(server.pid(), "JFR.stop", "name=bench", "filename=" + file);
        System.out.println("delivery: server JFR recording of the measured part: " + file);
      }
    }

    private static void jcmd(long pid, String... command) throws Exception {
      List<String> args = new ArrayList<>(List.of(
          Path.of(System.getProperty("java.home"), "bin", "jcmd").toString(), Long.toString(pid)));
      args.addAll(List.of(command));
      Process p = new ProcessBuilder(args).redirectErrorStream(true).start();
      String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
      if (p.waitFor() != 0) {
        throw new IllegalStateException("jcmd " + String.join(" ", command) + " failed: " + out);
      }
    }
  }
}
