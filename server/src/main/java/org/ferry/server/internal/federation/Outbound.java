package org.ferry.server.internal.federation;

import com.google.protobuf.ByteString;
import io.grpc.Status;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.atomic.AtomicLong;
import org.ferry.proto.ErrorReasons;
import org.ferry.proto.ForwardOutcomes;
import org.ferry.proto.ServerAddress;
import org.ferry.proto.v1.ForwardOutcome;
import org.ferry.server.internal.mailbox.StorageBudget;
import org.ferry.server.internal.metrics.ServerMetrics;
import org.ferry.server.internal.store.MailboxStore;
import org.ferry.server.internal.store.OutboundEntry;
import org.ferry.server.internal.store.OutboundItem;
import org.ferry.server.internal.store.OutcomeEnvelope;
import org.ferry.server.internal.time.ServerClock;

/**
 * The home server's custody of items for other servers: bounded per destination and by the
 * storage budget, one {@link Lane} per destination, expiry from the store's index, and the
 * outcome for the forwarder written in the same batch that removes an item.
 */
final class Outbound implements AutoCloseable {
  static final String HOP_HOME = "home";
  static final String HOP_DESTINATION = "destination";

  private final MailboxStore store;
  private final ServerClock clock;
  private final StorageBudget budget;
  private final FederationOptions options;
  private final PeerPolicy policy;
  private final PeerChannels channels;
  private final ServerMetrics metrics;
  private final SecureRandom random;
  private final ScheduledExecutorService scheduler;
  private final java.time.Duration outcomeTtl;
  /** Items waiting per destination (fingerprint text): checked at enqueue. */
  private final Map<String, AtomicLong> waiting = new ConcurrentHashMap<>();
  private final Map<String, Lane> lanes = new ConcurrentHashMap<>();

  Outbound(MailboxStore store, ServerClock clock, StorageBudget budget, FederationOptions options,
      PeerPolicy policy, PeerChannels channels, ServerMetrics metrics, SecureRandom random,
      ScheduledExecutorService scheduler, Duration outcomeTtl) {
    this.store = store;
    this.clock = clock;
    this.budget = budget;
    this.options = options;
    this.policy = policy;
    this.channels = channels;
    this.metrics = metrics;
    this.random = random;
    this.scheduler = scheduler;
    this.outcomeTtl = outcomeTtl;
  }

  /**
   * Finds the lanes with items waiting (after a restart) and starts each after a random part
   * of the first backoff, so that a restart does not send to every peer at once.
   */
  void start() {
    store.outboundCounts().forEach((fp, count) -> {
      byte[] fingerprint = new byte[32];
      fp.duplicate().get(fingerprint);
      List<OutboundEntry> first = store.readOutbound(fingerprint, false, 1, 1);
      if (first.isEmpty()) {
        return;
      }
      ServerAddress address;
      try {
        address = ServerAddress.parse(first.get(0).item().destination());
      } catch (IllegalArgumentException e) {
        return;
      }
      waiting.computeIfAbsent(address.fingerprintText(), k -> new AtomicLong()).addAndGet(count);
      policy.know(fingerprint);
      lane(address).startAfter(jitter(options.retryInitial()));
    });
  }

  Duration jitter(Duration upTo) {
    return Duration.ofNanos((long) (random() * upTo.toNanos()));
  }

  /** Uniform in [0, 1), for jitter. */
  double random() {
    return random.nextDouble();
  }

  /** Items waiting, by destination fingerprint text (for metrics). */
  Map<String, Long> waiting() {
    Map<String, Long> out = new java.util.TreeMap<>();
    waiting.forEach((k, v) -> out.put(k, v.get()));
    return out;
  }

  /** Each destination with a lane: its address, items waiting and {@link Lane#status}. */
  java.util.List<Map<String, Object>> status() {
    java.util.List<Map<String, Object>> out = new java.util.ArrayList<>();
    for (Lane lane : lanes.values()) {
      Map<String, Object> m = new java.util.LinkedHashMap<>();
      m.put("peer", ServerMetrics.peerLabel(lane.destination().fingerprintText()));
      m.put("address", lane.destination().toString());
      m.put("waiting", waiting(lane.destination()));
      m.putAll(lane.status());
      out.add(m);
    }
    out.sort(java.util.Comparator.comparing(m -> (String) m.get("peer")));
    return out;
  }

  long waiting(ServerAddress destination) {
    AtomicLong n = waiting.get(destination.fingerprintText());
    return n == null ? 0 : n.get();
  }

  /**
   * Takes custody of {@code item} for {@code destination}; the future completes once it is
   * synced. RESOURCE_EXHAUSTED (PEER_QUEUE_FULL, SERVER_FULL) at once when it does not fit.
   */
  CompletableFuture<Void> enqueue(ServerAddress destination, OutboundItem item) {
    AtomicLong count = waiting.computeIfAbsent(destination.fingerprintText(), k -> new AtomicLong());
    if (count.incrementAndGet() > options.maxQueuedPerPeer()) {
      count.decrementAndGet();
      throw ErrorReasons.withReason(Status.Code.RESOURCE_EXHAUSTED, ErrorReasons.PEER_QUEUE_FULL,
          "this server holds as many items for that server as it may; try again later");
    }
    StorageBudget.Reservation reserved;
    try {
      reserved = budget.reserve(item.body().length);
    } catch (RuntimeException e) {
      count.decrementAndGet();
      throw e;
    }
    policy.know(destination.fingerprint());
    CompletableFuture<Long> write;
    try {
      write = store.enqueueOutbound(destination.fingerprint(), item);
    } catch (RuntimeException e) {
      reserved.close();
      count.decrementAndGet();
      throw e;
    }
    return write.handle((seq, failure) -> {
      reserved.close();
      if (failure != null) {
        count.decrementAndGet();
        throw failure instanceof RuntimeException r ? r : new java.util.concurrent.CompletionException(failure);
      }
      lane(destination).wake();
      return null;
    });
  }

  private Lane lane(ServerAddress destination) {
    return lanes.computeIfAbsent(destination.fingerprintText(),
        k -> new Lane(destination, this, channels, options, clock, metrics, scheduler));
  }

  /**
   * Removes an item and puts its outcome in its forwarder's mailbox, in one write (no outcome
   * if the forwarder's mailbox is gone). Completes with whether the item was still there.
   */
  CompletableFuture<Boolean> finish(OutboundEntry entry, boolean delivered, int code, String reason,
      String message, String hop) {
    OutboundItem item = entry.item();
    ForwardOutcome.Builder outcome = ForwardOutcome.newBuilder()
        .setItemId(ByteString.copyFrom(item.itemId()))
        .setDestination(item.destination())
        .setResult(delivered ? ForwardOutcome.Result.DELIVERED : ForwardOutcome.Result.FAILED);
    if (!delivered) {
      outcome.setCode(code).setReason(reason).setHop(hop)
          .setMessage(message.length() > 200 ? message.substring(0, 200) : message);
    }
    OutcomeEnvelope envelope = null;
    if (store.mailbox(item.forwarder()).isPresent()) {
      byte[] id = new byte[16];
      random.nextBytes(id);
      envelope = new OutcomeEnvelope(item.forwarder(), id, ForwardOutcomes.toBody(outcome.build()),
          clock.instant().plus(outcomeTtl));
    }
    String peer = ServerAddress.fingerprintText(entry.destination());
    return store.completeOutbound(entry.destination(), entry.seq(), envelope).thenApply(removed -> {
      if (removed) {
        AtomicLong n = waiting.get(peer);
        if (n != null) {
          n.decrementAndGet();
        }
        if (delivered) {
          metrics.federationDelivered(peer, 1);
        } else {
          metrics.federationFailed(peer, reason.isEmpty() ? Status.fromCodeValue(code).getCode().name() : reason);
        }
      }
      return removed;
    });
  }

  /** Removes every item whose time ran out, telling each forwarder (EXPIRED, hop home). */
  int sweepExpired() {
    int removed = 0;
    for (int round = 0; round < 1000; round++) {
      List<OutboundEntry> due = store.expiredOutbound(clock.instant());
      if (due.isEmpty()) {
        break;
      }
      List<CompletableFuture<Boolean>> done = new ArrayList<>();
      for (OutboundEntry e : due) {
        done.add(finish(e, false, Status.Code.DEADLINE_EXCEEDED.value(), ErrorReasons.EXPIRED,
            "the item's time ran out before the destination accepted it", HOP_HOME));
      }
      for (CompletableFuture<Boolean> d : done) {
        if (d.join()) {
          removed++;
        }
      }
    }
    return removed;
  }

  MailboxStore store() {
    return store;
  }

  PeerPolicy policy() {
    return policy;
  }

  @Override
  public void close() {
    lanes.values().forEach(Lane::stop);
  }
}
