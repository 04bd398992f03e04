package org.ferry.it.load;

import com.google.protobuf.ByteString;
import io.grpc.CallOptions;
import io.grpc.ClientCall;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.Status;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.ferry.proto.ServerAddress;
import org.ferry.proto.v1.MailboxesGrpc;
import org.ferry.proto.v1.ReceiveRequest;
import org.ferry.proto.v1.ReceiveResponse;
import org.ferry.proto.v1.Subscribe;

/**
 * Receivers that never read, and connections that never speak, against a server with a small
 * heap, while an honest pair keeps talking (issue 19 point 2).
 *
 * <p>Fills a few mailboxes with a backlog, opens many receive streams that subscribe to them and
 * then read nothing (the client's HTTP/2 window fills and stays full), and many idle TCP and TLS
 * connections. Before and during that, one owner receives what one sender sends, one envelope
 * at a time, and the driver measures each envelope's latency from send to delivery.
 *
 * <p>Prints one line: {@code hostile: streams= subscribed= refused= idle= baseline_p50_ms=
 * baseline_p99_ms= attack_p50_ms= attack_p99_ms= p99_ratio= heap_used_mib= rss_mib= oom=}.
 */
public final class HostileReceivers {
  /** What to throw at the server. */
  public record Plan(int backlogMailboxes, int backlogBytesPerMailbox, int streams, int streamConnections,
      int idleTcp, int idleTls, int honestMessages) {}

  /** What happened. */
  public record Result(int subscribed, Map<Status.Code, Integer> refused, int honestLost,
      double baselineP50, double baselineP99, double attackP50, double attackP99,
      long heapUsedMiB, long rssMiB, boolean outOfMemory, boolean serverAlive) {
    String line(Plan plan, int idle) {
      return String.format(
          "hostile: streams=%d subscribed=%d refused=%s idle=%d honest_lost=%d baseline_p50_ms=%.2f "
              + "baseline_p99_ms=%.2f attack_p50_ms=%.2f attack_p99_ms=%.2f p99_ratio=%.2f "
              + "heap_used_mib=%d rss_mib=%d oom=%s alive=%s",
          plan.streams(), subscribed, refused, idle, honestLost, baselineP50, baselineP99,
          attackP50, attackP99, attackP99 / baselineP99, heapUsedMiB, rssMiB, outOfMemory, serverAlive);
    }
  }

  private HostileReceivers() {}

  /**
   * Runs the plan against a fresh server started with {@code jvmArgs} (for example
   * {@code -Xmx128m}) in {@code work}, and prints and returns the figures.
   */
  public static Result run(Path work, List<String> jvmArgs, Plan plan) throws Exception {
    Path data = work.resolve("server");
    try (ServerProcess server = ServerProcess.start(
        ServerProcess.Command.fromClassPath(data, jvmArgs, List.of()), 0)) {
      ServerAddress address = server.address();
      List<ManagedChannel> channels = new ArrayList<>();
      List<Socket> idle = new ArrayList<>();
      List<AutoCloseable> closers = new ArrayList<>();
      try {
        ManagedChannel setup = LoadClient.channel(address);
        channels.add(setup);
        LoadClient.Mailbox honest = LoadClient.createMailbox(setup);
        List<LoadClient.Mailbox> backlog = new ArrayList<>();
        for (int i = 0; i < plan.backlogMailboxes(); i++) {
          LoadClient.Mailbox box = LoadClient.createMailbox(setup);
          backlog.add(box);
          MailboxesGrpc.MailboxesBlockingStub stub = MailboxesGrpc.newBlockingStub(setup);
          for (int sent = 0; sent < plan.backlogBytesPerMailbox(); sent += 65536) {
            stub.send(box.send(LoadClient.noise(16), LoadClient.noise(65536)));
          }
        }

        phase("backlog filled");
        HonestPair pair = new HonestPair(address, honest);
        closers.add(pair);
        pair.talk(Math.min(50, plan.honestMessages())); // warm-up
        double[] baseline = pair.talk(plan.honestMessages());

        phase("baseline measured");
        // Streams that subscribe and then never read.
        List<ManagedChannel> hostile = new ArrayList<>();
        for (int i = 0; i < plan.streamConnections(); i++) {
          hostile.add(LoadClient.channel(address));
        }
        channels.addAll(hostile);
        CountDownLatch settled = new CountDownLatch(plan.streams());
        AtomicInteger subscribed = new AtomicInteger();
        Map<Status.Code, Integer> refused = new ConcurrentHashMap<>();
        for (int i = 0; i < plan.streams(); i++) {
          nonReadingStream(hostile.get(i % hostile.size()), backlog.get(i % backlog.size()),
              subscribed, refused, settled);
        }
        for (int i = 0; i < plan.idleTcp(); i++) {
          Socket s = new Socket();
          s.connect(new InetSocketAddress(address.host(), address.port()), 5000);
          idle.add(s);
        }
        for (int i = 0; i < plan.idleTls(); i++) {
          ManagedChannel ch = LoadClient.channel(address);
          channels.add(ch);
          // A cheap call makes the channel connect (TLS and HTTP/2), then it stays idle.
          try {
            io.grpc.health.v1.HealthGrpc.newBlockingStub(ch).withDeadlineAfter(10, TimeUnit.SECONDS)
                .check(io.grpc.health.v1.HealthCheckRequest.getDefaultInstance());
          } catch (RuntimeException refusedOrBusy) {
            // Counted as what it is: the server may refuse connections beyond its cap.
          }
        }
        phase("attack connections open");
        if (!settled.await(60, TimeUnit.SECONDS)) {
          throw new IllegalStateException(settled.getCount() + " hostile streams neither subscribed nor ended");
        }

        phase("hostile streams settled");
        double[] attack = pair.talk(plan.honestMessages());
        phase("attack measured");
        int lost = (int) (plan.honestMessages() - attack[2]);
        boolean alive = server.isAlive();
        long heap = alive ? heapUsedMiB(server.pid()) : -1;
        long rss = alive ? rssMiB(server.pid()) : -1;
        boolean oom = Files.readString(data.resolveSibling("server-stderr.log"), StandardCharsets.UTF_8)
            .contains("OutOfMemoryError");
        Result r = new Result(subscribed.get(), Map.copyOf(refused), lost, baseline[0], baseline[1],
            attack[0], attack[1], heap, rss, oom, alive);
        System.out.println(r.line(plan, plan.idleTcp() + plan.idleTls()));
        return r;
      } finally {
        for (Socket s : idle) {
          s.close();
        }
        channels.forEach(ManagedChannel::shutdownNow);
        for (AutoCloseable c : closers) {
          c.close();
        }
      }
    }
  }

  /** A receive stream that subscribes and then asks for nothing more. */
  private static void nonReadingStream(ManagedChannel channel, LoadClient.Mailbox box,
      AtomicInteger subscribed, Map<Status.Code, Integer> refused, CountDownLatch settled) {
    ClientCall<ReceiveRequest, ReceiveResponse> call =
        channel.newCall(MailboxesGrpc.getReceiveMethod(), CallOptions.DEFAULT);
    AtomicInteger once = new AtomicInteger();
    call.start(new ClientCall.Listener<>() {
      @Override
      public void onMessage(ReceiveResponse r) {
        if (r.hasChallenge()) {
          call.sendMessage(ReceiveRequest.newBuilder().setSubscribe(Subscribe.newBuilder()
              .setMailboxId(box.id()).setSignature(box.sign(r.getChallenge().getNonce()))).build());
        } else if (r.hasSubscribed() && once.compareAndSet(0, 1)) {
          subscribed.incrementAndGet();
          settled.countDown();
        }
      }

      @Override
      public void onClose(Status status, Metadata trailers) {
        if (once.compareAndSet(0, 1)) {
          refused.merge(status.getCode(), 1, Integer::sum);
          settled.countDown();
        }
      }
    }, new Metadata());
    // The challenge and the subscription's answer; deliveries are never asked for.
    call.request(2);
  }

  /**
   * One sender and one receiver on a mailbox of their own, each on a connection made before any
   * attack began: envelopes one after another, each sent once the previous one arrived.
   */
  private static final class HonestPair implements AutoCloseable {
    private final Map<ByteString, Long> sentAt = new ConcurrentHashMap<>();
    private final List<Double> latencies = java.util.Collections.synchronizedList(new ArrayList<>());
    private final java.util.concurrent.Semaphore arrived = new java.util.concurrent.Semaphore(0);
    private final LoadClient.Mailbox box;
    private final ManagedChannel channel;
    private final Receiver receiver;

    HonestPair(ServerAddress address, LoadClient.Mailbox box) {
      this.box = box;
      this.channel = LoadClient.channel(address);
      this.receiver = new Receiver(() -> address, List.of(box), d -> {
        Long t0 = sentAt.remove(d.getEnvelope().getId());
        if (t0 != null) {
          latencies.add((System.nanoTime() - t0) / 1e6);
          arrived.release();
        }
      });
    }

    /** Sends {@code n} envelopes; returns p50 and p99 latency in ms and how many arrived. */
    double[] talk(int n) throws InterruptedException {
      latencies.clear();
      MailboxesGrpc.MailboxesBlockingStub stub = MailboxesGrpc.newBlockingStub(channel);
      int got = 0;
      for (int i = 0; i < n; i++) {
        byte[] id = LoadClient.noise(16);
        sentAt.put(ByteString.copyFrom(id), System.nanoTime());
        stub.withDeadlineAfter(30, TimeUnit.SECONDS).send(box.send(id, LoadClient.noise(1024)));
        if (arrived.tryAcquire(30, TimeUnit.SECONDS)) {
          got++;
        }
      }
      double[] sorted;
      synchronized (latencies) {
        sorted = latencies.stream().mapToDouble(Double::doubleValue).sorted().toArray();
      }
      return new double[] {percentile(sorted, 0.50), percentile(sorted, 0.99), got};
    }

    @Override
    public void close() {
      receiver.close();
      channel.shutdownNow();
    }
  }

  private static long lastPhase = System.nanoTime();

  private static void phase(String what) {
    long now = System.nanoTime();
    System.err.printf("hostile: %s (%.1f s)%n", what, (now - lastPhase) / 1e9);
    lastPhase = now;
  }

  private static double percentile(double[] sorted, double p) {
    if (sorted.length == 0) {
      return Double.NaN;
    }
    return sorted[Math.min(sorted.length - 1, (int) Math.ceil(p * sorted.length) - 1)];
  }

  private static long heapUsedMiB(long pid) {
    try {
      Process p = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "jcmd").toString(),
          Long.toString(pid), "GC.heap_info").redirectErrorStream(true).start();
      String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
      p.waitFor(30, TimeUnit.SECONDS);
      // "garbage-first heap   total 131072K, used 45678K [...]"
      java.util.regex.Matcher m = java.util.regex.Pattern.compile("used (\\d+)K").matcher(out);
      return m.find() ? Long.parseLong(m.group(1)) / 1024 : -1;
    } catch (IOException e) {
      return -1;
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return -1;
    }
  }

  private static long rssMiB(long pid) throws IOException {
    for (String line : Files.readAllLines(Path.of("/proc/" + pid + "/status"))) {
      if (line.startsWith("VmRSS:")) {
        return Long.parseLong(line.replaceAll("\\D", "")) / 1024;
      }
    }
    return -1;
  }

  /**
   * {@code java ... HostileReceivers WORKDIR [XMX_MIB] [STREAMS] [IDLE]}: the long run, for
   * docs/BENCHMARKS.md.
   */
  public static void main(String[] args) throws Exception {
    Path work = Path.of(args[0]);
    int xmx = args.length > 1 ? Integer.parseInt(args[1]) : 256;
    int streams = args.length > 2 ? Integer.parseInt(args[2]) : 400;
    int idleConnections = args.length > 3 ? Integer.parseInt(args[3]) : 1000;
    Plan plan = new Plan(64, 2 << 20, streams, Math.max(1, streams / 8), idleConnections, 100, 500);
    Result r = run(work, List.of("-Xmx" + xmx + "m"), plan);
    System.exit(r.outOfMemory() || !r.serverAlive() || r.honestLost() > 0 ? 1 : 0);
  }
}
