package org.ferry.it.load;

import io.grpc.ManagedChannel;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.ferry.proto.v1.MailboxesGrpc;
import org.ferry.server.internal.mailbox.MailboxId;
import org.ferry.server.internal.store.MailboxStore;
import org.rocksdb.ColumnFamilyDescriptor;
import org.rocksdb.ColumnFamilyHandle;
import org.rocksdb.ColumnFamilyOptions;
import org.rocksdb.DBOptions;
import org.rocksdb.Options;
import org.rocksdb.RocksDB;
import org.rocksdb.RocksIterator;
import org.rocksdb.WriteOptions;

/**
 * The store-and-forward benchmarks of docs/BENCHMARKS.md: each figure next to a baseline taken
 * in the same run on the same machine, printed as a ratio.
 *
 * <pre>java -cp ... org.ferry.it.load.Benchmarks SERVER_JAR WORK_DIR [accept|e2e|restart|idle|all]</pre>
 */
public final class Benchmarks {
  static final int BODY = 1024;
  private static final long WARMUP_MS = 3000;
  static final long MEASURE_MS = 8000;
  private static final long WARM_SERVER_MS = 20000;
  static final List<String> OPEN_LIMITS = List.of(
      "--create-rate", "1000000", "--create-burst", "1000000",
      "--mailbox-max-envelopes", "100000000", "--mailbox-max-bytes", "1T", "--storage-budget", "1T");

  private final Path serverJar;
  private final Path work;

  private Benchmarks(Path serverJar, Path work) {
    this.serverJar = serverJar;
    this.work = work;
  }

  public static void main(String[] args) throws Exception {
    if (args.length < 2) {
      System.err.println("usage: Benchmarks SERVER_JAR WORK_DIR [accept|e2e|restart|idle|all]");
      System.exit(2);
    }
    Benchmarks b = new Benchmarks(Path.of(args[0]), Path.of(args[1]));
    String which = args.length > 2 ? args[2] : "all";
    System.out.printf("bench: %d cores, java %s, %s%n", Runtime.getRuntime().availableProcessors(),
        System.getProperty("java.version"), Instant.now());
    if (which.equals("accept") || which.equals("all")) {
      b.acceptRate();
    }
    if (which.equals("e2e") || which.equals("all")) {
      b.endToEnd();
    }
    if (which.equals("restart") || which.equals("all")) {
      b.restart(Integer.getInteger("ferry.bench.queued", 1_000_000));
    }
    if (which.equals("idle") || which.equals("all")) {
      b.idleStreams(Integer.getInteger("ferry.bench.streams", 10_000),
          Integer.getInteger("ferry.bench.connections", 1_000));
    }
  }

  private ServerProcess startServer(String name, String heap) throws IOException {
    return ServerProcess.start(ServerProcess.Command.fromJar(
        serverJar, work.resolve(name), List.of(heap), OPEN_LIMITS), 0);
  }

  // ---- 1. durable accept rate: 64 vs 1 sender, and vs raw RocksDB synced puts ----

  private void acceptRate() throws Exception {
    double raw64 = rawSyncedPuts(work.resolve("raw-64"), 64);
    double raw1 = rawSyncedPuts(work.resolve("raw-1"), 1);
    double ferry1;
    double ferry64;
    try (ServerProcess server = startServer("accept", "-Xmx1g")) {
      // A fresh JVM needs tens of thousands of calls before its JIT has compiled the hot paths.
      sendRate(server, 64, WARM_SERVER_MS);
      ferry1 = sendRate(server, 1, MEASURE_MS);
      ferry64 = sendRate(server, 64, MEASURE_MS);
    }
    System.out.printf(Locale.ROOT, "accept: raw rocksdb sync puts: 1 thread %.0f/s, 64 threads %.0f/s%n", raw1, raw64);
    System.out.printf(Locale.ROOT, "accept: ferry durable sends:    1 sender %.0f/s, 64 senders %.0f/s%n", ferry1, ferry64);
    System.out.printf(Locale.ROOT, "accept: ferry@64 / raw@64 = %.2f   (target >= 0.50)%n", ferry64 / raw64);
    System.out.printf(Locale.ROOT, "accept: ferry@64 / ferry@1 = %.1fx   (target >= 20x)%n", ferry64 / ferry1);
    System.out.printf(Locale.ROOT, "accept: raw@64 / raw@1 = %.1fx   (group commit in RocksDB alone)%n", raw64 / raw1);
  }

  /** Synced puts of the same size as a queued envelope, by {@code threads} threads. */
  static double rawSyncedPuts(Path dir, int threads) throws Exception {
    try (Options options = new Options().setCreateIfMissing(true);
        RocksDB db = RocksDB.open(options, dir.toString());
        WriteOptions sync = new WriteOptions().setSync(true)) {
      AtomicLong seq = new AtomicLong();
      return measure(threads, MEASURE_MS, () -> {
        byte[] key = ByteBuffer.allocate(40).putLong(32, seq.incrementAndGet()).array();
        db.put(sync, key, LoadClient.noise(1 + 8 + 16 + BODY));
      });
    }
  }

  /** Durable sends per second by {@code senders} threads over up to 8 connections, each to its own mailbox. */
  static double sendRate(ServerProcess server, int senders, long measureMs) throws Exception {
    List<ManagedChannel> channels = new ArrayList<>();
    for (int i = 0; i < Math.min(senders, 8); i++) {
      channels.add(LoadClient.channel(server.address()));
    }
    List<LoadClient.Mailbox> boxes = new ArrayList<>();
    for (int i = 0; i < senders; i++) {
      boxes.add(LoadClient.createMailbox(channels.get(0)));
    }
    AtomicInteger next = new AtomicInteger();
    ThreadLocal<Integer> mine = ThreadLocal.withInitial(next::getAndIncrement);
    try {
      return measure(senders, measureMs, () -> {
        int i = mine.get();
        MailboxesGrpc.newBlockingStub(channels.get(i % channels.size()))
            .send(boxes.get(i).send(LoadClient.noise(16), LoadClient.noise(BODY)));
      });
    } finally {
      channels.forEach(ManagedChannel::shutdownNow);
    }
  }

  interface Op {
    void run() throws Exception;
  }

  /** Runs {@code op} in a loop on {@code threads} threads; returns completed ops per second after a warm-up. */
  static double measure(int threads, long measureMs, Op op) throws Exception {
    AtomicLong done = new AtomicLong();
    CountDownLatch stop = new CountDownLatch(1);
    AtomicLong failures = new AtomicLong();
    List<Thread> ts = new ArrayList<>();
    for (int i = 0; i < threads; i++) {
      Thread t = new Thread(() -> {
        while (stop.getCount() > 0) {
          try {
            op.run();
            done.incrementAndGet();
          } catch (Exception e) {
            if (failures.incrementAndGet() == 1) {
              e.printStackTrace();
            }
          }
        }
      });
      t.setDaemon(true);
      t.start();
      ts.add(t);
    }
    stop.await(WARMUP_MS, TimeUnit.MILLISECONDS);
    long before = done.get();
    long t0 = System.nanoTime();
    stop.await(measureMs, TimeUnit.MILLISECONDS);
    long after = done.get();
    long t1 = System.nanoTime();
    stop.countDown();
    for (Thread t : ts) {
      t.join();
    }
    if (failures.get() > 0) {
      throw new IllegalStateException(failures.get() + " operations failed");
    }
    return (after - before) / ((t1 - t0) / 1e9);
  }

  // ---- 2. end to end: sender to connected recipient, durable ----

  private void endToEnd() throws Exception {
    int senders = 16;
    try (ServerProcess server = startServer("e2e", "-Xmx1g")) {
      ManagedChannel channel = LoadClient.channel(server.address());
      List<LoadClient.Mailbox> boxes = new ArrayList<>();
      for (int i = 0; i < senders; i++) {
        boxes.add(LoadClient.createMailbox(channel));
      }
      ConcurrentLinkedQueue<Long> latencies = new ConcurrentLinkedQueue<>();
      AtomicLong measuringFrom = new AtomicLong(Long.MAX_VALUE);
      AtomicLong received = new AtomicLong();
      try (Receiver r = new Receiver(server::address, boxes, d -> {
        long sentAt = d.getEnvelope().getBody().asReadOnlyByteBuffer().getLong();
        received.incrementAndGet();
        if (sentAt >= measuringFrom.get()) {
          latencies.add(System.nanoTime() - sentAt);
        }
      })) {
        AtomicInteger next = new AtomicInteger();
        ThreadLocal<Integer> mine = ThreadLocal.withInitial(next::getAndIncrement);
        Op send = () -> {
          byte[] body = LoadClient.noise(BODY);
          ByteBuffer.wrap(body).putLong(System.nanoTime());
          MailboxesGrpc.newBlockingStub(channel).send(boxes.get(mine.get() % senders).send(LoadClient.noise(16), body));
        };
        measure(senders, WARM_SERVER_MS, send);
        // Let the owner catch up with the warm-up, then measure from a drained queue.
        CountDownLatch pause = new CountDownLatch(1);
        long seen;
        do {
          seen = received.get() + latencies.size();
          pause.await(1, TimeUnit.SECONDS);
        } while (received.get() + latencies.size() != seen);
        measuringFrom.set(System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(WARMUP_MS));
        double sendRate = measure(senders, MEASURE_MS, send);
        report(senders, "as fast as the senders can (saturated: latency is mostly queueing)", sendRate, latencies);
        // The same at an offered load of half that rate: latency of a busy but unsaturated server.
        long interval = (long) (2e9 / sendRate);
        AtomicLong slot = new AtomicLong(System.nanoTime());
        Op paced = () -> {
          long at = slot.addAndGet(interval);
          long wait;
          while ((wait = at - System.nanoTime()) > 0) {
            java.util.concurrent.locks.LockSupport.parkNanos(wait);
          }
          send.run();
        };
        latencies.clear();
        measuringFrom.set(System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(WARMUP_MS));
        double pacedRate = measure(senders, MEASURE_MS, paced);
        report(senders, "paced at half the saturated rate", pacedRate, latencies);
      }
      channel.shutdownNow();
    }
  }

  private static void report(int senders, String how, double rate, ConcurrentLinkedQueue<Long> latencies) {
    long[] sorted = latencies.stream().mapToLong(Long::longValue).sorted().toArray();
    System.out.printf(Locale.ROOT,
        "e2e: %d senders -> 1 connected owner of their %d mailboxes, 1 KiB, durable, %s: %.0f msgs/s; "
            + "latency send-start to delivery p50 %.2f ms, p99 %.2f ms (%d samples)%n",
        senders, senders, how, rate, pct(sorted, 0.50), pct(sorted, 0.99), sorted.length);
  }

  private static double pct(long[] sorted, double p) {
    return sorted.length == 0 ? 0 : sorted[(int) Math.min(sorted.length - 1, Math.floor(p * sorted.length))] / 1e6;
  }

  // ---- 3. restart with N queued envelopes vs raw open + full scan ----

  private void restart(int queued) throws Exception {
    Path dir = work.resolve("restart-store");
    long fillStart = System.nanoTime();
    try (MailboxStore store = MailboxStore.open(dir)) {
      List<MailboxId> boxes = new ArrayList<>();
      SecureRandom random = new SecureRandom();
      for (int i = 0; i < 1000; i++) {
        boxes.add(MailboxId.random(random));
      }
      AtomicLong left = new AtomicLong(queued);
      Instant expires = Instant.now().plusSeconds(86400 * 21);
      List<Thread> ts = new ArrayList<>();
      for (int t = 0; t < 64; t++) {
        Thread th = new Thread(() -> {
          long n;
          while ((n = left.decrementAndGet()) >= 0) {
            // Random bodies, like sealed envelopes: nothing for RocksDB's compression to gain.
            store.append(boxes.get((int) (n % boxes.size())), LoadClient.noise(16), LoadClient.noise(BODY), expires);
          }
        });
        th.start();
        ts.add(th);
      }
      for (Thread th : ts) {
        th.join();
      }
    }
    System.out.printf(Locale.ROOT, "restart: filled %d envelopes of 1 KiB in %.1f s (%d MiB on disk)%n",
        queued, (System.nanoTime() - fillStart) / 1e9, du(dir) >> 20);
    double[] ferry = new double[3];
    double[] raw = new double[3];
    long scanned = 0;
    for (int i = 0; i < 3; i++) {
      long t0 = System.nanoTime();
      try (MailboxStore store = MailboxStore.open(dir)) {
        store.queuedBytes();
        store.read(MailboxId.random(new SecureRandom()), 0, 32);
      }
      ferry[i] = (System.nanoTime() - t0) / 1e6;
      long t1 = System.nanoTime();
      scanned = rawOpenAndScan(dir);
      raw[i] = (System.nanoTime() - t1) / 1e6;
    }
    Arrays.sort(ferry);
    Arrays.sort(raw);
    System.out.printf(Locale.ROOT, "restart: raw rocksdb open + full scan of %d queue entries: median %.0f ms%n", scanned, raw[1]);
    System.out.printf(Locale.ROOT, "restart: ferry store open, ready to serve, close: median %.0f ms%n", ferry[1]);
    System.out.printf(Locale.ROOT, "restart: ferry / raw = %.2f   (target <= 2)%n", ferry[1] / raw[1]);
    long t0 = System.nanoTime();
    try (ServerProcess server = ServerProcess.start(ServerProcess.Command.fromJar(
        serverJar, dir.resolveSibling("restart-server"), List.of("-Xmx1g"), List.of()), 0)) {
      System.out.printf(Locale.ROOT, "restart: (for scale) a whole `ferry server` JVM start to ready line on an empty store: %.0f ms%n",
          (System.nanoTime() - t0) / 1e6);
    }
  }

  private static long rawOpenAndScan(Path dir) throws Exception {
    List<ColumnFamilyDescriptor> cfs = new ArrayList<>();
    try (Options probe = new Options()) {
      for (byte[] name : RocksDB.listColumnFamilies(probe, dir.toString())) {
        cfs.add(new ColumnFamilyDescriptor(name, new ColumnFamilyOptions().setMergeOperatorName("uint64add")));
      }
    }
    List<ColumnFamilyHandle> handles = new ArrayList<>();
    long n = 0;
    try (DBOptions options = new DBOptions();
        RocksDB db = RocksDB.openReadOnly(options, dir.toString(), cfs, handles)) {
      for (int i = 0; i < cfs.size(); i++) {
        if (new String(cfs.get(i).getName(), StandardCharsets.US_ASCII).equals("queue")) {
          try (RocksIterator it = db.newIterator(handles.get(i))) {
            for (it.seekToFirst(); it.isValid(); it.next()) {
              n += it.value().length > 0 ? 1 : 0;
            }
          }
        }
      }
      handles.forEach(ColumnFamilyHandle::close);
    }
    cfs.forEach(c -> c.getOptions().close());
    return n;
  }

  private static long du(Path dir) throws IOException {
    try (Stream<Path> files = Files.walk(dir)) {
      return files.filter(Files::isRegularFile).mapToLong(p -> p.toFile().length()).sum();
    }
  }

  // ---- 4. idle receive streams: server heap ----

  private void idleStreams(int streams, int connections) throws Exception {
    try (ServerProcess server = startServer("idle", "-Xmx2g")) {
      long baseline = heapUsed(server);
      ManagedChannel creator = LoadClient.channel(server.address());
      List<LoadClient.Mailbox> boxes = new ArrayList<>();
      for (int i = 0; i < streams; i++) {
        boxes.add(LoadClient.createMailbox(creator));
      }
      creator.shutdownNow();
      IdleStreams open = new IdleStreams(server.address(), boxes, connections, Duration.ofSeconds(300));
      long loaded;
      try {
        loaded = heapUsed(server);
      } finally {
        open.close();
      }
      System.out.printf(Locale.ROOT, "idle: %d receive streams over %d TLS connections, all subscribed and idle%n", streams, connections);
      System.out.printf(Locale.ROOT, "idle: server heap used after GC: %d MiB idle server, %d MiB with the streams (target <= 512 MiB); %.1f KiB per stream%n",
          baseline >> 20, loaded >> 20, (loaded - baseline) / 1024.0 / streams);
    }
  }

  /** Heap in use in the server process after a full GC, as jcmd reports it. */
  private static long heapUsed(ServerProcess server) throws Exception {
    jcmd(server.pid(), "GC.run");
    String info = jcmd(server.pid(), "GC.heap_info");
    Matcher m = Pattern.compile("used (\\d+)K").matcher(info);
    if (!m.find()) {
      throw new IllegalStateException("cannot read heap use from: " + info);
    }
    return Long.parseLong(m.group(1)) * 1024;
  }

  private static String jcmd(long pid, String command) throws Exception {
    Path jcmd = Path.of(System.getProperty("java.home"), "bin", "jcmd");
    Process p = new ProcessBuilder(jcmd.toString(), Long.toString(pid), command).redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    p.waitFor();
    return out;
  }
}
