package org.ferry.it.crash;

import com.google.protobuf.InvalidProtocolBufferException;
import io.grpc.ManagedChannel;
import io.grpc.StatusRuntimeException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.ferry.it.load.Forwarder;
import org.ferry.it.load.LoadClient;
import org.ferry.it.load.Receiver;
import org.ferry.it.load.ServerProcess;
import org.ferry.proto.ForwardOutcomes;
import org.ferry.proto.v1.Delivery;
import org.ferry.proto.v1.ForwardOutcome;
import org.ferry.proto.v1.RoutingKey;
import org.ferry.server.testing.Ports;

/**
 * Federation under failure: senders hand items for mailboxes on server B to their home server
 * A (Forwarding.Forward), while the harness kills A, B or both with SIGKILL ({@link #crash}) or
 * keeps B down for a long outage and restarts A in the middle of it ({@link #outage}). Its
 * ledger ({@link CrashLedger}) then shows that every item A acknowledged reached B's store
 * exactly once (lost=0, stranded=0, stored-twice=0), and it counts the DELIVERED outcomes A put
 * in the senders' forwarder mailboxes.
 *
 * <pre>java -cp ... org.ferry.it.crash.FederatedHarness SERVER_JAR WORK_DIR crash CYCLES
 * java -cp ... org.ferry.it.crash.FederatedHarness SERVER_JAR WORK_DIR outage SECONDS</pre>
 */
public final class FederatedHarness {
  private static final HexFormat HEX = HexFormat.of();
  private static final int SENDERS = 4;
  private static final int MAILBOXES = 6;
  private static final int RECEIVERS = 2;
  private static final int BODY = 1024;
  /** Items A must acknowledge before the harness may kill anything. */
  static final int MIN_ACKS_PER_CYCLE = 20;
  /**
   * How long B's receivers may take to get everything once the senders stopped: A's lane may
   * be backing off (at most 5 minutes) when B comes back, and a long outage leaves a backlog of
   * up to 100,000 items (A's per-peer cap) to drain.
   */
  static final Duration LIVE_WAIT = Duration.ofMinutes(10);
  /**
   * B's budget for A's items, out of the way: the harness proves that nothing is lost or stored
   * twice, not how the default budget for unknown peers (200 items/s) paces a backlog's drain.
   */
  public static final List<String> DESTINATION_ARGS = List.of("--unknown-peers-rate", "100000");
  static final Duration FINAL_WAIT = Duration.ofSeconds(60);

  private final ServerProcess.Command homeCommand;
  private final ServerProcess.Command destinationCommand;
  private final Random random;
  private final CrashLedger account = new CrashLedger();
  private final Set<String> delivered = ConcurrentHashMap.newKeySet();
  private final Set<String> failed = ConcurrentHashMap.newKeySet();
  private final Set<String> ackedIds = ConcurrentHashMap.newKeySet();
  private volatile ServerProcess home;
  private volatile ServerProcess destination;
  private volatile ManagedChannel homeChannel;
  private int homePort;
  private int destinationPort;

  public FederatedHarness(ServerProcess.Command home, ServerProcess.Command destination, long seed) {
    this.homeCommand = home;
    this.destinationCommand = destination;
    this.random = new Random(seed);
  }

  /**
   * What a run saw: the ledger's result, how many acknowledged items A reported DELIVERED to
   * their senders, and how many outcomes said FAILED. (Items whose Forward was cut by a kill are
   * not acknowledged, so not in the ledger, though A may have kept and delivered them.)
   */
  public record Outcome(CrashLedger.Result ledger, long deliveredOutcomes, long failedOutcomes) {
    /** Exactly once, and every acknowledged item's sender heard it was delivered. */
    public boolean passed() {
      return ledger.passed() && failedOutcomes == 0 && deliveredOutcomes == ledger.acked();
    }

    public String line() {
      return ledger.line() + " acked-reported-delivered=" + deliveredOutcomes + " outcomes-failed=" + failedOutcomes;
    }
  }

  public static void main(String[] args) throws Exception {
    if (args.length != 4 || !(args[2].equals("crash") || args[2].equals("outage"))) {
      System.err.println("usage: FederatedHarness SERVER_JAR WORK_DIR crash CYCLES | outage SECONDS");
      System.exit(2);
    }
    Path work = Path.of(args[1]);
    FederatedHarness h = new FederatedHarness(
        ServerProcess.Command.fromJar(Path.of(args[0]), work.resolve("a"), List.of("-Xmx512m"), List.of()),
        ServerProcess.Command.fromJar(Path.of(args[0]), work.resolve("b"), List.of("-Xmx512m"), DESTINATION_ARGS),
        System.nanoTime());
    int n = Integer.parseInt(args[3]);
    Outcome r = args[2].equals("crash") ? h.crash(n) : h.outage(Duration.ofSeconds(n));
    System.out.println(r.line());
    System.exit(r.passed() ? 0 : 1);
  }

  /** Kills A, B or both at random moments {@code cycles} times under load. */
  public Outcome crash(int cycles) throws Exception {
    return run(cycles, (stop) -> {
      for (int cycle = 0; cycle < cycles; cycle++) {
        account.awaitMoreAcks(MIN_ACKS_PER_CYCLE);
        stop.await(random.nextInt(1300), TimeUnit.MILLISECONDS);
        int which = random.nextInt(3);
        if (which != 1) {
          restartHome();
        }
        if (which != 0) {
          destination.kill();
          destination = ServerProcess.start(destinationCommand, destinationPort);
        }
      }
    });
  }

  /**
   * Keeps B down for {@code down} under load, kills and restarts A halfway through, then brings
   * B back.
   */
  public Outcome outage(Duration down) throws Exception {
    return run(1, (stop) -> {
      account.awaitMoreAcks(MIN_ACKS_PER_CYCLE);
      destination.kill();
      long half = down.toMillis() / 2;
      stop.await(half, TimeUnit.MILLISECONDS);
      restartHome();
      stop.await(down.toMillis() - half, TimeUnit.MILLISECONDS);
      destination = ServerProcess.start(destinationCommand, destinationPort);
    });
  }

  private interface Schedule {
    void run(CountDownLatch stop) throws Exception;
  }

  private Outcome run(int cycles, Schedule schedule) throws Exception {
    // Ports below the ephemeral range: a killed server's port must still be free for its restart.
    destinationPort = Ports.belowEphemeral("127.0.0.1");
    destination = ServerProcess.start(destinationCommand, destinationPort);
    homePort = Ports.belowEphemeral("127.0.0.1");
    home = ServerProcess.start(homeCommand, homePort);
    homeChannel = LoadClient.channel(home.address());
    List<LoadClient.Mailbox> mailboxes = new ArrayList<>();
    ManagedChannel b = LoadClient.channel(destination.address());
    for (int i = 0; i < MAILBOXES; i++) {
      mailboxes.add(LoadClient.createMailbox(b));
    }
    b.shutdownNow();
    List<Forwarder> forwarders = new ArrayList<>();
    for (int i = 0; i < SENDERS; i++) {
      forwarders.add(Forwarder.create(homeChannel));
    }
    RoutingKey key = forwarders.get(0).routingKey(homeChannel, destination.address());
    CountDownLatch stop = new CountDownLatch(1);
    List<Thread> senders = new ArrayList<>();
    for (int i = 0; i < SENDERS; i++) {
      Forwarder f = forwarders.get(i);
      long seed = random.nextLong();
      Thread t = new Thread(() -> send(f, key, mailboxes, stop, new Random(seed)), "sender-" + i);
      t.setDaemon(true);
      t.start();
      senders.add(t);
    }
    List<Receiver> receivers = account.receivers(() -> destination.address(), mailboxes, RECEIVERS);
    Receiver outcomes = new Receiver(() -> home.address(),
        forwarders.stream().map(Forwarder::mailbox).toList(), this::outcome);
    schedule.run(stop);
    stop.countDown();
    for (Thread t : senders) {
      t.join(30_000);
    }
    account.settle(receivers, LIVE_WAIT, () -> {
      destination.close();
      destination = ServerProcess.start(destinationCommand, destinationPort);
      return account.receivers(() -> destination.address(), mailboxes, RECEIVERS);
    }, FINAL_WAIT);
    // Outcomes follow deliveries: give A the time to write the last ones.
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
    while (!settled() && System.nanoTime() < deadline) {
      stop.await(100, TimeUnit.MILLISECONDS);
    }
    outcomes.close();
    homeChannel.shutdownNow();
    home.close();
    destination.close();
    return new Outcome(account.result(cycles), ackedIds.stream().filter(delivered::contains).count(), failed.size());
  }

  /** Whether every acknowledged item's outcome came back. */
  private boolean settled() {
    return ackedIds.stream().allMatch(id -> delivered.contains(id) || failed.contains(id));
  }

  private void restartHome() throws Exception {
    home.kill();
    home = ServerProcess.start(homeCommand, homePort);
    ManagedChannel old = homeChannel;
    homeChannel = LoadClient.channel(home.address());
    old.shutdownNow();
  }

  private void outcome(Delivery d) {
    try {
      ForwardOutcome o = ForwardOutcomes.fromBody(d.getEnvelope().getBody().toByteArray());
      String id = HEX.formatHex(o.getItemId().toByteArray());
      (o.getResult() == ForwardOutcome.Result.DELIVERED ? delivered : failed).add(id);
    } catch (InvalidProtocolBufferException e) {
      failed.add("unreadable:" + HEX.formatHex(d.getEnvelope().getId().toByteArray()));
    }
  }

  private void send(Forwarder f, RoutingKey key, List<LoadClient.Mailbox> mailboxes, CountDownLatch stop, Random rnd) {
    byte[] body = new byte[BODY];
    while (stop.getCount() > 0) {
      byte[] itemId = new byte[16];
      rnd.nextBytes(itemId);
      rnd.nextBytes(body);
      try {
        f.forward(homeChannel, f.request(destination.address(), key,
            mailboxes.get(rnd.nextInt(mailboxes.size())), itemId, body));
        account.acked(HEX.formatHex(itemId));
        ackedIds.add(HEX.formatHex(itemId));
      } catch (StatusRuntimeException e) {
        // A is down or restarting, or over budget: the fate of this item is unknown or it was
        // refused, so it is not in the ledger.
        try {
          stop.await(20, TimeUnit.MILLISECONDS);
        } catch (InterruptedException ie) {
          Thread.currentThread().interrupt();
          return;
        }
      }
    }
  }
}
