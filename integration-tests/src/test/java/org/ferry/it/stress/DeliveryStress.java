package org.ferry.it.stress;

import io.grpc.ManagedChannel;
import io.grpc.StatusRuntimeException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicLongArray;
import java.util.concurrent.atomic.AtomicReferenceArray;
import org.ferry.it.load.LoadClient;
import org.ferry.it.load.Receiver;
import org.ferry.it.load.ServerProcess;
import org.ferry.proto.ServerAddress;
import org.ferry.proto.v1.Delivery;
import org.ferry.proto.v1.MailboxesGrpc;

/**
 * Liveness of delivery under concurrency: an envelope the server acknowledged must reach the
 * owner's connected receive stream within a bound, whatever the interleaving of writes, without
 * the owner reconnecting; and a large backlog must drain into a fresh stream without pausing.
 *
 * <p>Two cases:
 * <ul>
 *   <li>{@link #concurrent}: many senders write to many mailboxes at once, each mailbox with one
 *       connected receiver that acknowledges what it gets. After the senders stop, every
 *       acknowledged envelope must arrive within {@code bound}; the ones that did not are
 *       <em>stranded</em>. A fresh receiver then reads every mailbox again, so that a stranded
 *       envelope (on disk, not pushed) is told from a lost one (not on disk).
 *   <li>{@link #drain}: one mailbox is filled with a backlog while its owner is away; then the
 *       owner connects and must receive all of it, never waiting longer than {@code maxPause}
 *       for the next delivery.
 * </ul>
 *
 * <pre>java -cp ... org.ferry.it.stress.DeliveryStress SERVER_JAR WORK_DIR SECONDS</pre>
 * runs the concurrent case for SECONDS, then drains until SECONDS have passed again, and prints
 * one line per case; exits 1 if any case failed.
 */
public final class DeliveryStress {
  private static final int BODY = 1024;

  private DeliveryStress() {}

  /** The outcome of a concurrent run. */
  public record ConcurrentResult(
      int senders, int mailboxes, Duration run, long acked, long delivered, long stranded,
      long lost, long reconnects, long sendErrors, double maxLatencyMs) {
    public boolean passed() {
      return stranded == 0 && lost == 0 && reconnects == 0 && sendErrors == 0 && acked > 0;
    }

    public String line() {
      return String.format(Locale.ROOT,
          "delivery-stress: senders=%d mailboxes=%d seconds=%d acked=%d delivered=%d stranded=%d lost=%d"
              + " reconnects=%d send-errors=%d max-latency-ms=%.0f",
          senders, mailboxes, run.toSeconds(), acked, delivered, stranded, lost, reconnects,
          sendErrors, maxLatencyMs);
    }
  }

  /** The outcome of one backlog drain. */
  public record DrainResult(int backlog, long delivered, double seconds, double maxPauseMs, long reconnects) {
    public boolean passed(Duration maxPause) {
      return delivered == backlog && reconnects == 0 && maxPauseMs <= maxPause.toMillis();
    }

    public String line() {
      return String.format(Locale.ROOT,
          "delivery-drain: backlog=%d delivered=%d seconds=%.1f rate=%.0f/s max-pause-ms=%.0f reconnects=%d",
          backlog, delivered, seconds, delivered / Math.max(seconds, 1e-3), maxPauseMs, reconnects);
    }
  }

  /**
   * Envelope ids carry their index in this ledger in their first 8 bytes, so that the whole run
   * is tracked in flat arrays: when each envelope was acknowledged, to which mailbox, and how
   * often and when it was delivered.
   */
  static final class Ledger {
    private static final int CHUNK = 1 << 16;
    private final AtomicLong next = new AtomicLong();
    private final AtomicReferenceArray<Chunk> chunks = new AtomicReferenceArray<>(1 << 12);

    private static final class Chunk {
      final AtomicLongArray ackedAt = new AtomicLongArray(CHUNK);
      final AtomicLongArray deliveredAt = new AtomicLongArray(CHUNK);
      final int[] mailbox = new int[CHUNK];
    }

    long issue() {
      return next.getAndIncrement();
    }

    long issued() {
      return next.get();
    }

    private Chunk chunk(long index) {
      int c = (int) (index / CHUNK);
      Chunk chunk = chunks.get(c);
      if (chunk == null) {
        chunks.compareAndSet(c, null, new Chunk());
        chunk = chunks.get(c);
      }
      return chunk;
    }

    void acked(long index, int mailbox, long nanos) {
      Chunk c = chunk(index);
      c.mailbox[(int) (index % CHUNK)] = mailbox;
      c.ackedAt.set((int) (index % CHUNK), nanos);
    }

    void delivered(long index, long nanos) {
      chunk(index).deliveredAt.compareAndSet((int) (index % CHUNK), 0, nanos);
    }

    long ackedAt(long index) {
      return chunk(index).ackedAt.get((int) (index % CHUNK));
    }

    long deliveredAt(long index) {
      return chunk(index).deliveredAt.get((int) (index % CHUNK));
    }

    /** Acknowledged envelopes not delivered yet. */
    long missing() {
      long n = 0;
      for (long i = 0; i < issued(); i++) {
        if (ackedAt(i) != 0 && deliveredAt(i) == 0) {
          n++;
        }
      }
      return n;
    }

    long acked() {
      long n = 0;
      for (long i = 0; i < issued(); i++) {
        if (ackedAt(i) != 0) {
          n++;
        }
      }
      return n;
    }

    double maxLatencyMs() {
      long max = 0;
      for (long i = 0; i < issued(); i++) {
        long a = ackedAt(i);
        long d = deliveredAt(i);
        if (a != 0 && d != 0) {
          max = Math.max(max, d - a);
        }
      }
      return max / 1e6;
    }

    static byte[] envelopeId(long index) {
      byte[] id = new byte[16];
      ThreadLocalRandom.current().nextBytes(id);
      ByteBuffer.wrap(id).putLong(index);
      return id;
    }

    static long indexOf(Delivery d) {
      return d.getEnvelope().getId().asReadOnlyByteBuffer().getLong();
    }
  }

  /** Runs the concurrent case against a running server. */
  public static ConcurrentResult concurrent(
      ServerAddress server, int senders, int mailboxCount, Duration run, Duration bound)
      throws InterruptedException {
    Ledger ledger = new Ledger();
    List<ManagedChannel> channels = new ArrayList<>();
    for (int i = 0; i < 4; i++) {
      channels.add(LoadClient.channel(server));
    }
    List<LoadClient.Mailbox> boxes = new ArrayList<>();
    for (int i = 0; i < mailboxCount; i++) {
      boxes.add(LoadClient.createMailbox(channels.get(0)));
    }
    List<Receiver> receivers = new ArrayList<>();
    try {
      for (LoadClient.Mailbox box : boxes) {
        receivers.add(new Receiver(() -> server, List.of(box),
            d -> ledger.delivered(Ledger.indexOf(d), System.nanoTime())));
      }
      CountDownLatch stop = new CountDownLatch(1);
      AtomicLong sendErrors = new AtomicLong();
      List<Thread> threads = new ArrayList<>();
      for (int s = 0; s < senders; s++) {
        ManagedChannel ch = channels.get(s % channels.size());
        Thread t = new Thread(() -> {
          ThreadLocalRandom rnd = ThreadLocalRandom.current();
          while (stop.getCount() > 0) {
            int box = rnd.nextInt(boxes.size());
            long index = ledger.issue();
            try {
              MailboxesGrpc.newBlockingStub(ch).withDeadlineAfter(30, TimeUnit.SECONDS)
                  .send(boxes.get(box).send(Ledger.envelopeId(index), LoadClient.noise(BODY)));
              ledger.acked(index, box, System.nanoTime());
            } catch (StatusRuntimeException e) {
              sendErrors.incrementAndGet();
            }
          }
        }, "stress-sender-" + s);
        t.setDaemon(true);
        t.start();
        threads.add(t);
      }
      stop.await(run.toMillis(), TimeUnit.MILLISECONDS);
      stop.countDown();
      for (Thread t : threads) {
        t.join();
      }
      // Every acknowledged envelope must now reach its connected receiver within the bound.
      long deadline = System.nanoTime() + bound.toNanos();
      long missing;
      while ((missing = ledger.missing()) > 0 && System.nanoTime() < deadline) {
        stop.await(50, TimeUnit.MILLISECONDS);
      }
      // Stranded: on disk but not pushed to the connected stream in time (lost ones are split out below).
      long stranded = missing;
      long reconnects = receivers.stream().mapToLong(r -> r.streamsOpened() - 1).sum();
      receivers.forEach(Receiver::close);
      receivers.clear();
      // A fresh stream per mailbox reads whatever is on disk: what still misses is lost.
      long lost = 0;
      if (stranded > 0) {
        for (LoadClient.Mailbox box : boxes) {
          receivers.add(new Receiver(() -> server, List.of(box),
              d -> ledger.delivered(Ledger.indexOf(d), System.nanoTime())));
        }
        long again = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while ((lost = ledger.missing()) > 0 && System.nanoTime() < again) {
          stop.await(100, TimeUnit.MILLISECONDS);
        }
      }
      long acked = ledger.acked();
      return new ConcurrentResult(senders, mailboxCount, run, acked, acked - lost, stranded - lost, lost, reconnects, sendErrors.get(), ledger.maxLatencyMs());
    } finally {
      receivers.forEach(Receiver::close);
      channels.forEach(ManagedChannel::shutdownNow);
    }
  }

  /**
   * Fills one new mailbox with {@code backlog} envelopes while nobody receives, then connects its
   * owner and waits for all of them, failing (in the result) if a pause exceeds {@code maxPause}.
   */
  public static DrainResult drain(ServerAddress server, int backlog, Duration maxPause)
      throws InterruptedException {
    Ledger ledger = new Ledger();
    ManagedChannel ch = LoadClient.channel(server);
    try {
      LoadClient.Mailbox box = LoadClient.createMailbox(ch);
      List<Thread> fillers = new ArrayList<>();
      AtomicLong left = new AtomicLong(backlog);
      for (int i = 0; i < 16; i++) {
        Thread t = new Thread(() -> {
          while (left.getAndDecrement() > 0) {
            long index = ledger.issue();
            MailboxesGrpc.newBlockingStub(ch).withDeadlineAfter(30, TimeUnit.SECONDS)
                .send(box.send(Ledger.envelopeId(index), LoadClient.noise(BODY)));
            ledger.acked(index, 0, System.nanoTime());
          }
        }, "drain-filler-" + i);
        t.start();
        fillers.add(t);
      }
      for (Thread t : fillers) {
        t.join();
      }
      AtomicLong last = new AtomicLong();
      AtomicLong worst = new AtomicLong();
      long start = System.nanoTime();
      last.set(start);
      CountDownLatch never = new CountDownLatch(1);
      try (Receiver r = new Receiver(() -> server, List.of(box), d -> {
        long now = System.nanoTime();
        worst.accumulateAndGet(now - last.getAndSet(now), Math::max);
        ledger.delivered(Ledger.indexOf(d), now);
      })) {
        // Wait for the backlog; a pause longer than allowed ends the wait and fails the case.
        long allowed = maxPause.toNanos();
        while (ledger.missing() > 0) {
          long pause = System.nanoTime() - last.get();
          worst.accumulateAndGet(pause, Math::max);
          if (pause > allowed) {
            break;
          }
          never.await(50, TimeUnit.MILLISECONDS);
        }
        double seconds = (last.get() - start) / 1e9;
        return new DrainResult(backlog, backlog - ledger.missing(), seconds, worst.get() / 1e6,
            r.streamsOpened() - 1);
      }
    } finally {
      ch.shutdownNow();
    }
  }

  public static void main(String[] args) throws Exception {
    if (args.length != 3) {
      System.err.println("usage: DeliveryStress SERVER_JAR WORK_DIR SECONDS");
      System.exit(2);
    }
    Path work = Path.of(args[1]);
    long seconds = Long.parseLong(args[2]);
    boolean ok = true;
    try (ServerProcess server = ServerProcess.start(ServerProcess.Command.fromJar(
        Path.of(args[0]), work.resolve("server"), List.of("-Xmx1g"), openLimits()), 0)) {
      ConcurrentResult c = concurrent(server.address(), 32, 64, Duration.ofSeconds(seconds), Duration.ofSeconds(5));
      System.out.println(c.line());
      ok &= c.passed();
      long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
      int drains = 0;
      do {
        DrainResult d = drain(server.address(), 10_000, Duration.ofSeconds(3));
        System.out.println(d.line());
        ok &= d.passed(Duration.ofSeconds(3));
        drains++;
      } while (System.nanoTime() < until || drains < 3);
    }
    System.exit(ok ? 0 : 1);
  }

  /** Server flags that take quotas and creation limits out of the way of a stress run. */
  public static List<String> openLimits() {
    return List.of(
        "--create-rate", "1000000", "--create-burst", "1000000",
        "--mailbox-max-envelopes", "100000000", "--mailbox-max-bytes", "1T", "--storage-budget", "1T");
  }
}
