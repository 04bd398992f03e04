package org.ferry.sdk.internal.dial;

import com.google.protobuf.InvalidProtocolBufferException;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import org.ferry.proto.BridgeLine;
import org.ferry.proto.ServerAddress;
import org.ferry.proto.local.v1.BridgeHealth;
import org.ferry.proto.local.v1.ServerRoutes;
import org.ferry.sdk.internal.store.LocalStore;

/**
 * The ways this client knows to reach each server, and how they fared: the server's own address
 * first, then its bridge lines in the order given. Kept in the local store (so a command-line
 * client that runs for a second still remembers), written behind on one thread so that no
 * carrier's event loop waits for a disk sync.
 *
 * <p>A failed line backs off, with jitter, from {@link #BACKOFF_BASE} doubling up to
 * {@link #BACKOFF_MAX}; while backing off it is tried only after every other line. The line that
 * last worked on this network goes first, except that every {@link #REPROBE_AFTER} the lines
 * given before it go first once more, so a better carrier is found again when it comes back.
 */
public final class RouteBook implements AutoCloseable {
  static final Duration BACKOFF_BASE = Duration.ofSeconds(5);
  static final Duration BACKOFF_MAX = Duration.ofHours(1);
  static final Duration REPROBE_AFTER = Duration.ofMinutes(10);
  private static final String PREFIX = "routes/";

  private final LocalStore store;
  private final Clock clock;
  private final Random random;
  private final Supplier<String> network;
  private final Map<ServerAddress, ServerRoutes> routes = new HashMap<>();
  private final Map<ServerAddress, BridgeLine> inUse = new HashMap<>();
  private final Map<ServerAddress, Long> lastReprobe = new HashMap<>();
  private final ExecutorService writer = Executors.newSingleThreadExecutor(r -> {
    Thread t = new Thread(r, "ferry-routes");
    t.setDaemon(true);
    return t;
  });

  public RouteBook(LocalStore store, Clock clock, Random random) {
    this(store, clock, random, new NetworkId());
  }

  RouteBook(LocalStore store, Clock clock, Random random, Supplier<String> network) {
    this.store = store;
    this.clock = clock;
    this.random = random;
    this.network = network;
  }

  /** What the status command shows of one line. */
  public record Health(BridgeLine line, long successes, long failures, int consecutiveFailures,
      Optional<java.time.Instant> lastSuccess, Optional<java.time.Instant> lastFailure,
      Optional<java.time.Instant> backingOffUntil) {}

  public static BridgeLine directLine(ServerAddress server) {
    return BridgeLine.parse("direct " + server.hostPort());
  }

  /** Adds lines for {@code server} (ignoring ones it has); {@code persist} false keeps them in memory only. */
  public synchronized void addBridges(ServerAddress server, Collection<BridgeLine> lines, boolean persist) {
    ServerRoutes.Builder b = load(server).toBuilder();
    int before = b.getBridgesCount();
    for (BridgeLine line : lines) {
      String text = line.toString();
      if (b.getBridgesList().stream().noneMatch(h -> h.getLine().equals(text))) {
        b.addBridges(BridgeHealth.newBuilder().setLine(text));
      }
    }
    if (b.getBridgesCount() > before) {
      // Every accepted invitation and contact card comes here, most with nothing new: no write then.
      put(server, b.build(), persist);
    }
  }

  /** Writes what is kept in memory for {@code server} to the store. */
  public synchronized void persist(ServerAddress server) {
    put(server, load(server), true);
  }

  /** The bridge lines of {@code server}, without its own address. */
  public synchronized List<BridgeLine> bridges(ServerAddress server) {
    return load(server).getBridgesList().stream().skip(1).map(h -> BridgeLine.parse(h.getLine())).toList();
  }

  /**
   * At most {@code max} bridge lines of {@code server} to give to others (invitations, contact
   * cards): lines that work first (the one that worked last before the others), then lines not
   * tried yet, then lines that failed when last tried, each group in the order given.
   */
  public synchronized List<BridgeLine> shareable(ServerAddress server, int max) {
    List<BridgeHealth> lines = load(server).getBridgesList().stream().skip(1).toList();
    Comparator<BridgeHealth> order = Comparator
        .comparingInt((BridgeHealth h) -> h.getConsecutiveFailures() > 0 ? 2 : h.getSuccesses() > 0 ? 0 : 1)
        .thenComparing(h -> h.getConsecutiveFailures() > 0 || h.getSuccesses() == 0 ? 0 : -h.getLastSuccessAt());
    return lines.stream().sorted(order).limit(max).map(h -> BridgeLine.parse(h.getLine())).toList();
  }

  /** Every line with its health, the server's own address first. */
  public synchronized List<Health> health(ServerAddress server) {
    long now = clock.millis();
    return load(server).getBridgesList().stream().map(h -> new Health(
        BridgeLine.parse(h.getLine()), h.getSuccesses(), h.getFailures(), h.getConsecutiveFailures(),
        instant(h.getLastSuccessAt()), instant(h.getLastFailureAt()),
        backingOff(h, now) ? instant(h.getRetryAfter()) : Optional.empty())).toList();
  }

  /** The line carrying the connection to {@code server} now, if one is up. */
  public synchronized Optional<BridgeLine> inUse(ServerAddress server) {
    return Optional.ofNullable(inUse.get(server));
  }

  /** The line that last worked for {@code server} on this network. */
  public synchronized Optional<BridgeLine> lastGood(ServerAddress server) {
    return Optional.ofNullable(load(server).getLastGoodMap().get(network.get())).map(BridgeLine::parse);
  }

  /** The order to try lines in, for a dial starting now. */
  public synchronized List<BridgeLine> plan(ServerAddress server) {
    ServerRoutes r = load(server);
    long now = clock.millis();
    String good = r.getLastGoodMap().get(network.get());
    int goodIndex = -1;
    for (int i = 0; i < r.getBridgesCount(); i++) {
      if (r.getBridges(i).getLine().equals(good)) {
        goodIndex = i;
      }
    }
    long sinceReprobe = now - lastReprobe.getOrDefault(server, now);
    // A wall clock stepped back since the last probe (sinceReprobe < 0) leaves how long it has
    // been unknown: probe now rather than wait out the step.
    boolean reprobe = goodIndex > 0 && (sinceReprobe >= REPROBE_AFTER.toMillis() || sinceReprobe < 0);
    lastReprobe.putIfAbsent(server, now);
    if (reprobe) {
      lastReprobe.put(server, now);
    }
    int preferred = reprobe ? -1 : goodIndex;
    List<Integer> order = new ArrayList<>();
    for (int i = 0; i < r.getBridgesCount(); i++) {
      order.add(i);
    }
    order.sort(Comparator
        .comparing((Integer i) -> backingOff(r.getBridges(i), now))
        .thenComparing(i -> i != preferred)
        .thenComparing(i -> backingOff(r.getBridges(i), now) ? r.getBridges(i).getRetryAfter() : 0L)
        .thenComparing(i -> i));
    return order.stream().map(i -> BridgeLine.parse(r.getBridges(i).getLine())).toList();
  }

  /**
   * Whether a line waits out a back-off at wall time {@code now}. Back-offs are kept as wall
   * times so that they survive restarts; a wall clock now before the failure was stepped back
   * since, and the line is tried again rather than kept waiting for the length of the step
   * (a step forward ends back-offs early: at most one early try each).
   */
  private static boolean backingOff(BridgeHealth h, long now) {
    return now < h.getRetryAfter() && now >= h.getLastFailureAt();
  }

  /** {@code line} carried a TLS handshake to {@code server}: it works on this network. */
  public synchronized void succeeded(ServerAddress server, BridgeLine line) {
    inUse.put(server, line);
    ServerRoutes.Builder b = withHealth(server, line, h -> h.setSuccesses(h.getSuccesses() + 1)
        .setConsecutiveFailures(0).setLastSuccessAt(clock.millis()).setRetryAfter(0));
    put(server, b.putLastGood(network.get(), line.toString()).build(), true);
  }

  /** {@code line} could not be opened, got no answer, or died young. */
  public synchronized void failed(ServerAddress server, BridgeLine line) {
    ServerRoutes.Builder b = withHealth(server, line, h -> {
      int n = h.getConsecutiveFailures() + 1;
      long base = Math.min(BACKOFF_MAX.toMillis(), BACKOFF_BASE.toMillis() << Math.min(n - 1, 20));
      long delay = (long) (base * (0.5 + random.nextDouble()));
      return h.setFailures(h.getFailures() + 1).setConsecutiveFailures(n)
          .setLastFailureAt(clock.millis()).setRetryAfter(clock.millis() + delay);
    });
    if (line.toString().equals(b.getLastGoodMap().get(network.get()))) {
      b.removeLastGood(network.get());
    }
    put(server, b.build(), true);
  }

  /**
   * {@code line}'s bridge answered as a relay, but the server behind it did not: the line itself
   * works, so it is not backed off (a failure counted when the server's end dropped it is lifted).
   */
  public synchronized void bridgeAnswered(ServerAddress server, BridgeLine line) {
    put(server, withHealth(server, line, h -> h.setConsecutiveFailures(0).setRetryAfter(0)).build(), true);
  }

  /** The connection carried by {@code line} has ended. */
  public synchronized void ended(ServerAddress server, BridgeLine line) {
    inUse.remove(server, line);
  }

  /** The server's routes with {@code change} applied to {@code line}'s health; one write by the caller. */
  private ServerRoutes.Builder withHealth(ServerAddress server, BridgeLine line,
      java.util.function.UnaryOperator<BridgeHealth.Builder> change) {
    ServerRoutes.Builder b = load(server).toBuilder();
    for (int i = 0; i < b.getBridgesCount(); i++) {
      if (b.getBridges(i).getLine().equals(line.toString())) {
        b.setBridges(i, change.apply(b.getBridges(i).toBuilder()));
      }
    }
    return b;
  }

  private ServerRoutes load(ServerAddress server) {
    return routes.computeIfAbsent(server, s -> {
      ServerRoutes stored = store.get(PREFIX + s).map(bytes -> {
        try {
          return ServerRoutes.parseFrom(bytes);
        } catch (InvalidProtocolBufferException e) {
          return null;
        }
      }).orElse(null);
      if (stored != null && stored.getBridgesCount() > 0) {
        return stored;
      }
      return ServerRoutes.newBuilder().setServer(s.toString())
          .addBridges(BridgeHealth.newBuilder().setLine(directLine(s).toString())).build();
    });
  }

  private void put(ServerAddress server, ServerRoutes r, boolean persist) {
    routes.put(server, r);
    if (persist) {
      writer.execute(() -> {
        try (LocalStore.Txn txn = store.begin()) {
          txn.put(PREFIX + server, r.toByteArray());
          txn.commit();
        } catch (RuntimeException e) {
          // The store is closing; what was learnt is lost, and will be learnt again.
        }
      });
    }
  }

  private static Optional<java.time.Instant> instant(long millis) {
    return millis == 0 ? Optional.empty() : Optional.of(java.time.Instant.ofEpochMilli(millis));
  }

  /** Writes out what is pending; call before closing the store. */
  @Override
  public void close() {
    writer.shutdown();
    try {
      writer.awaitTermination(10, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
