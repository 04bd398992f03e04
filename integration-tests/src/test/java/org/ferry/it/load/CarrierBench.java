package org.ferry.it.load;

import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.ferry.it.Closer;
import org.ferry.it.censor.Censor;
import org.ferry.proto.BridgeLine;
import org.ferry.proto.ServerAddress;
import org.ferry.proto.v1.MailboxesGrpc;
import org.ferry.sdk.FerryClient;
import org.ferry.sdk.MessageListener;
import org.ferry.sdk.ReceivedMessage;
import org.ferry.sdk.internal.carrier.CarrierConnector;
import org.ferry.sdk.internal.dial.Dialer;
import org.ferry.sdk.internal.dial.RouteBook;
import org.ferry.sdk.internal.net.ServerConnections;
import org.ferry.sdk.internal.store.LocalStore;

/**
 * Carrier benchmarks (docs/BENCHMARKS.md), against a real server process that accepts the
 * carriers itself ({@code --carriers ws,poll,obfs4}):
 *
 * <ul>
 *   <li>{@code carriers}: 1 KiB sends (acknowledged durable writes) over each carrier, in
 *       interleaved rounds, against plain gRPC over TLS in the same run: throughput with 16
 *       concurrent senders, and p50 latency of one sender;
 *   <li>{@code firstmessage}: a new user whose first two lines (the server's address, then a
 *       WebSocket line) are blocked, one silently dropped and one reset on its upgrade: time from
 *       opening the client to the first message delivered to a contact.
 * </ul>
 */
public final class CarrierBench {
  private static final int SENDERS = 16;
  private static final Duration WARMUP = Duration.ofSeconds(15);
  private static final Duration RUN = Duration.ofSeconds(6);
  private static final int LATENCY_SENDS = 1_500;
  private static final int ROUNDS = 5;

  private CarrierBench() {}

  public static void main(String[] args) throws Exception {
    Path jar = Path.of(args[0]);
    Path work = Path.of(args[1]);
    String which = args.length > 2 ? args[2] : "all";
    try (ServerProcess server = ServerProcess.start(ServerProcess.Command.fromJar(jar, work.resolve("server"),
        List.of("-Xmx2g"), List.of("--carriers", "ws,poll,obfs4",
            "--mailbox-max-envelopes", "100000000", "--mailbox-max-bytes", "1T", "--storage-budget", "1T")), 0)) {
      List<BridgeLine> lines = Files.readAllLines(work.resolve("server/relay/bridges")).stream()
          .map(BridgeLine::parse).toList();
      if (which.equals("carriers") || which.equals("all")) {
        carriers(server.address(), lines, work);
      }
      if (which.equals("firstmessage") || which.equals("all")) {
        firstMessage(server.address(), lines, work);
      }
    }
  }

  /** A channel the way the SDK makes them, reaching the server over {@code line} only. */
  private record Route(String name, io.grpc.Channel channel, AutoCloseable[] parts) implements AutoCloseable {
    @Override
    public void close() {
      // The channel first, then the parts in the order given.
      try (Closer closer = new Closer()) {
        for (int i = parts.length - 1; i >= 0; i--) {
          closer.add(parts[i]);
        }
        if (channel instanceof io.grpc.ManagedChannel managed) {
          closer.add(managed::shutdownNow);
        }
      }
    }
  }

  private static Route sdkRoute(String name, ServerAddress server, Optional<BridgeLine> line, Path work) {
    Path dir = work.resolve("route-" + name);
    LocalStore store = LocalStore.open(dir.resolve("store"), LoadClient.random(32));
    // The server's own address is dialled only for "direct"; otherwise a closed port stands in.
    ServerAddress target = line.isEmpty() ? server : new ServerAddress("127.0.0.1", 1, server.fingerprint());
    RouteBook routes = new RouteBook(store, Clock.systemUTC(), new SecureRandom());
    line.ifPresent(l -> routes.addBridges(target, List.of(l), false));
    CarrierConnector connector = new CarrierConnector(Optional.empty(), "obfs4proxy", dir.resolve("obfs4"), Duration.ofSeconds(20));
    Dialer dialer = new Dialer(connector, routes, Duration.ofMillis(250), Duration.ofSeconds(20));
    ServerConnections net = new ServerConnections(Duration.ofSeconds(20), dialer);
    return new Route(name, net.channel(target), new AutoCloseable[] {net, dialer, connector, routes, store});
  }

  private static void carriers(ServerAddress server, List<BridgeLine> lines, Path work) throws Exception {
    Map<String, Route> routes = new LinkedHashMap<>();
    routes.put("grpc-tls", new Route("grpc-tls", LoadClient.channel(server), new AutoCloseable[0]));
    routes.put("direct", sdkRoute("direct", server, Optional.empty(), work));
    for (BridgeLine l : lines) {
      routes.put(l.kind().word(), sdkRoute(l.kind().word(), server, Optional.of(l), work));
    }
    Map<String, LoadClient.Mailbox> boxes = new LinkedHashMap<>();
    for (Route r : routes.values()) {
      boxes.put(r.name(), LoadClient.createMailbox(r.channel()));
    }
    System.out.println("carriers: warming up " + WARMUP.toSeconds() + " s over every route");
    long warmEnd = System.nanoTime() + WARMUP.toNanos();
    while (System.nanoTime() < warmEnd) {
      for (Route r : routes.values()) {
        throughput(r.channel(), boxes.get(r.name()), Duration.ofMillis(500));
      }
    }
    Map<String, List<Double>> rates = new LinkedHashMap<>();
    Map<String, List<Double>> p50s = new LinkedHashMap<>();
    for (int round = 1; round <= ROUNDS; round++) {
      for (Route r : routes.values()) {
        double rate = throughput(r.channel(), boxes.get(r.name()), RUN);
        double p50 = p50Millis(r.channel(), boxes.get(r.name()));
        rates.computeIfAbsent(r.name(), k -> new ArrayList<>()).add(rate);
        p50s.computeIfAbsent(r.name(), k -> new ArrayList<>()).add(p50);
        System.out.printf("carriers: round %d %-8s %8.0f sends/s  p50 %.2f ms%n", round, r.name(), rate, p50);
      }
    }
    double baseRate = median(rates.get("grpc-tls"));
    double baseP50 = median(p50s.get("grpc-tls"));
    System.out.printf("carriers: 1 KiB sends, %d senders for throughput, 1 for latency; medians of %d rounds%n",
        SENDERS, ROUNDS);
    for (String name : routes.keySet()) {
      double rate = median(rates.get(name));
      double p50 = median(p50s.get(name));
      System.out.printf("carriers: %-8s %8.0f sends/s = %.2f of grpc-tls   p50 %.2f ms (%+.2f ms)%n",
          name, rate, rate / baseRate, p50, p50 - baseP50);
    }
    for (Route r : routes.values()) {
      r.close();
    }
  }

  private static double throughput(io.grpc.Channel channel, LoadClient.Mailbox box, Duration run)
      throws InterruptedException {
    AtomicLong sent = new AtomicLong();
    CountDownLatch done = new CountDownLatch(SENDERS);
    long end = System.nanoTime() + run.toNanos();
    long start = System.nanoTime();
    for (int i = 0; i < SENDERS; i++) {
      Thread t = new Thread(() -> {
        try {
          MailboxesGrpc.MailboxesBlockingStub stub = MailboxesGrpc.newBlockingStub(channel);
          while (System.nanoTime() < end) {
            stub.withDeadlineAfter(30, TimeUnit.SECONDS).send(box.send(LoadClient.noise(16), LoadClient.noise(1024)));
            sent.incrementAndGet();
          }
        } finally {
          done.countDown();
        }
      });
      t.setDaemon(true);
      t.start();
    }
    done.await();
    return sent.get() * 1e9 / (System.nanoTime() - start);
  }

  private static double p50Millis(io.grpc.Channel channel, LoadClient.Mailbox box) {
    MailboxesGrpc.MailboxesBlockingStub stub = MailboxesGrpc.newBlockingStub(channel);
    long[] nanos = new long[LATENCY_SENDS];
    for (int i = 0; i < LATENCY_SENDS; i++) {
      long t0 = System.nanoTime();
      stub.withDeadlineAfter(30, TimeUnit.SECONDS).send(box.send(LoadClient.noise(16), LoadClient.noise(1024)));
      nanos[i] = System.nanoTime() - t0;
    }
    Arrays.sort(nanos);
    return nanos[LATENCY_SENDS / 2] / 1e6;
  }

  private static double median(List<Double> xs) {
    List<Double> s = new ArrayList<>(xs);
    s.sort(Double::compare);
    return s.get(s.size() / 2);
  }

  private static void firstMessage(ServerAddress server, List<BridgeLine> lines, Path work) throws Exception {
    BridgeLine printedWs = lines.stream().filter(l -> l.kind() == BridgeLine.Kind.WS).findFirst().orElseThrow();
    InetSocketAddress web = new InetSocketAddress("127.0.0.1", printedWs.port());
    List<Long> millis = new ArrayList<>();
    try (Censor direct = Censor.start(new InetSocketAddress("127.0.0.1", server.port())).block(Censor.Rule.DROP);
         Censor webCensor = Censor.start(web).block(Censor.Rule.WEBSOCKET_UPGRADE)) {
      ServerAddress censored = new ServerAddress("127.0.0.1", direct.port(), server.fingerprint());
      List<String> bridgeLines = List.of(
          new BridgeLine(BridgeLine.Kind.WS, "127.0.0.1", webCensor.port(), false, printedWs.path(), Optional.empty(), Map.of()).toString(),
          new BridgeLine(BridgeLine.Kind.POLL, "127.0.0.1", webCensor.port(), false, printedWs.path(), Optional.empty(), Map.of()).toString());
      try (FerryClient alice = client(work.resolve("alice"))) {
        // Alice is behind the same censor, so that everything Bob does goes through it too.
        alice.initialize(censored, "", bridgeLines);
        for (int run = 1; run <= 5; run++) {
          String uri = alice.createInvitation("bob" + run).uri();
          CountDownLatch arrived = new CountDownLatch(1);
          AtomicLong arrivedAt = new AtomicLong();
          long t0 = System.nanoTime();
          try (FerryClient bob = client(work.resolve("bob" + run))) {
            bob.initialize(censored, "", bridgeLines);
            bob.acceptInvitation(uri, "alice");
            bob.send("alice", "first");
            String carrier = bob.networkStatus().get(0).inUse().orElse("none").split(" ")[0];
            alice.receive(Duration.ofMillis(200), new MessageListener() {
              @Override
              public void onMessage(ReceivedMessage m) {
                arrivedAt.set(System.nanoTime());
                arrived.countDown();
              }
            });
            if (!arrived.await(10, TimeUnit.SECONDS)) {
              throw new IllegalStateException("the first message did not arrive");
            }
            long ms = (arrivedAt.get() - t0) / 1_000_000;
            millis.add(ms);
            System.out.printf("firstmessage: run %d: %d ms (carrier %s; includes accepting the invitation and Alice's receive)%n",
                run, ms, carrier);
          }
        }
      }
      List<Long> sorted = new ArrayList<>(millis);
      sorted.sort(Long::compare);
      System.out.printf("firstmessage: direct dropped, WebSocket upgrade reset: median %d ms, max %d ms over %d runs (target <= 3000)%n",
          sorted.get(sorted.size() / 2), sorted.get(sorted.size() - 1), sorted.size());
    }
  }

  private static FerryClient client(Path dir) {
    return FerryClient.builder().dataDirectory(dir).storageKey(LoadClient.random(32)).build();
  }
}
