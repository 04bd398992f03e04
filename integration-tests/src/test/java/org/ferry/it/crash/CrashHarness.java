package org.ferry.it.crash;

import io.grpc.ManagedChannel;
import io.grpc.StatusRuntimeException;
import java.io.BufferedWriter;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.ferry.it.load.LoadClient;
import org.ferry.it.load.Receiver;
import org.ferry.it.load.ServerProcess;
import org.ferry.proto.v1.Delivery;
import org.ferry.proto.v1.MailboxesGrpc;

/**
 * Kills a real server with SIGKILL at random moments under concurrent load, restarts it, and
 * checks against its own ledger that every send the server acknowledged is delivered.
 *
 * <p>Senders record a send in the ledger only once the server acknowledged it; receivers record
 * a delivery before they acknowledge it. After the last cycle the server runs once more, the
 * receivers drain every mailbox, and the harness prints
 * {@code crash-test: cycles=N acked=A delivered=D lost=L duplicates=U}: D distinct acknowledged
 * envelopes delivered, L acknowledged but never delivered, U deliveries beyond the first of an
 * envelope (expected after crashes: delivery is at-least-once).
 *
 * <pre>java -cp ... org.ferry.it.crash.CrashHarness SERVER_JAR WORK_DIR CYCLES [--unsafe-ack-before-write]</pre>
 */
public final class CrashHarness {
  private static final int SENDERS = 6;
  private static final int MAILBOXES = 6;
  private static final int RECEIVERS = 2;
  private static final int BODY = 1024;

  /** What a run found. */
  public record Result(int cycles, long acked, long delivered, long lost, long duplicates) {
    public String line() {
      return "crash-test: cycles=" + cycles + " acked=" + acked + " delivered=" + delivered
          + " lost=" + lost + " duplicates=" + duplicates;
    }
  }

  private final ServerProcess.Command command;
  private final int cycles;
  private final Random random;
  private final Map<String, Integer> ackedTo = new ConcurrentHashMap<>();
  private final Map<String, AtomicInteger> deliveries = new ConcurrentHashMap<>();
  private final AtomicLong lastDelivery = new AtomicLong(System.nanoTime());
  private final BufferedWriter ledger;
  private volatile ServerProcess server;
  private volatile ManagedChannel channel;

  public CrashHarness(ServerProcess.Command command, int cycles, long seed) throws IOException {
    this.command = command;
    this.cycles = cycles;
    this.random = new Random(seed);
    Path work = command.data().getParent();
    Files.createDirectories(work);
    this.ledger = Files.newBufferedWriter(work.resolve("acked.ledger"), StandardCharsets.US_ASCII);
  }

  public static void main(String[] args) throws Exception {
    if (args.length < 3) {
      System.err.println("usage: CrashHarness SERVER_JAR WORK_DIR CYCLES [--unsafe-ack-before-write]");
      System.exit(2);
    }
    Path work = Path.of(args[1]);
    List<String> extra = args.length > 3 && args[3].equals("--unsafe-ack-before-write")
        ? List.of("--unsafe-ack-before-write") : List.of();
    ServerProcess.Command command = ServerProcess.Command.fromJar(
        Path.of(args[0]), work.resolve("server"), List.of("-Xmx512m"), extra);
    Result r = new CrashHarness(command, Integer.parseInt(args[2]), System.nanoTime()).run();
    System.out.println(r.line());
    System.exit(r.lost() > 0 ? 1 : 0);
  }

  public Result run() throws Exception {
    server = ServerProcess.start(command, 0);
    int port = server.address().port();
    channel = LoadClient.channel(server.address());
    List<LoadClient.Mailbox> mailboxes = new ArrayList<>();
    for (int i = 0; i < MAILBOXES; i++) {
      mailboxes.add(LoadClient.createMailbox(channel));
    }
    CountDownLatch stopSending = new CountDownLatch(1);
    List<Thread> senders = new ArrayList<>();
    for (int i = 0; i < SENDERS; i++) {
      long senderSeed = random.nextLong();
      Thread t = new Thread(() -> send(mailboxes, stopSending, new Random(senderSeed)), "sender-" + i);
      t.setDaemon(true);
      t.start();
      senders.add(t);
    }
    List<Receiver> receivers = new ArrayList<>();
    for (int i = 0; i < RECEIVERS; i++) {
      List<LoadClient.Mailbox> mine = new ArrayList<>();
      for (int m = i; m < MAILBOXES; m += RECEIVERS) {
        mine.add(mailboxes.get(m));
      }
      receivers.add(new Receiver(() -> server.address(), mine, this::delivered));
    }
    for (int cycle = 0; cycle < cycles; cycle++) {
      // Run under load for a random while, then kill without warning.
      stopSending.await(200 + random.nextInt(1300), TimeUnit.MILLISECONDS);
      server.kill();
      server = ServerProcess.start(command, port);
      ManagedChannel old = channel;
      channel = LoadClient.channel(server.address());
      old.shutdownNow();
    }
    stopSending.countDown();
    for (Thread t : senders) {
      t.join(30_000);
    }
    drain();
    for (Receiver r : receivers) {
      r.close();
    }
    channel.shutdownNow();
    server.close();
    ledger.close();
    return tally();
  }

  private void send(List<LoadClient.Mailbox> mailboxes, CountDownLatch stop, Random rnd) {
    byte[] body = new byte[BODY];
    while (stop.getCount() > 0) {
      int box = rnd.nextInt(mailboxes.size());
      byte[] envelopeId = new byte[16];
      rnd.nextBytes(envelopeId);
      rnd.nextBytes(body);
      try {
        MailboxesGrpc.newBlockingStub(channel)
            .withDeadlineAfter(10, TimeUnit.SECONDS)
            .send(mailboxes.get(box).send(envelopeId, body));
        acked(HexFormat.of().formatHex(envelopeId), box);
      } catch (StatusRuntimeException e) {
        // The server is down or restarting: this send's fate is unknown, so it is not in the
        // ledger. Pause briefly instead of spinning.
        try {
          stop.await(20, TimeUnit.MILLISECONDS);
        } catch (InterruptedException ie) {
          Thread.currentThread().interrupt();
          return;
        }
      }
    }
  }

  private void acked(String id, int box) {
    ackedTo.put(id, box);
    synchronized (ledger) {
      try {
        ledger.write(id);
        ledger.newLine();
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }
  }

  private void delivered(Delivery d) {
    deliveries.computeIfAbsent(HexFormat.of().formatHex(d.getEnvelope().getId().toByteArray()),
        k -> new AtomicInteger()).incrementAndGet();
    lastDelivery.set(System.nanoTime());
  }

  /** Waits until every acknowledged send has arrived, or nothing has arrived for a while. */
  private void drain() throws InterruptedException {
    long quietNanos = TimeUnit.SECONDS.toNanos(3);
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
    CountDownLatch never = new CountDownLatch(1);
    while (System.nanoTime() < deadline) {
      boolean allIn = ackedTo.keySet().stream().allMatch(deliveries::containsKey);
      boolean quiet = System.nanoTime() - lastDelivery.get() > quietNanos;
      if (quiet || (allIn && System.nanoTime() - lastDelivery.get() > quietNanos / 3)) {
        return;
      }
      never.await(100, TimeUnit.MILLISECONDS);
    }
  }

  private Result tally() {
    long delivered = ackedTo.keySet().stream().filter(deliveries::containsKey).count();
    long lost = ackedTo.size() - delivered;
    long duplicates = deliveries.values().stream().mapToLong(c -> c.get() - 1).sum();
    return new Result(cycles, ackedTo.size(), delivered, lost, duplicates);
  }
}
