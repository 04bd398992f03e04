package org.ferry.server.internal.federation;

import com.google.common.util.concurrent.FutureCallback;
import com.google.common.util.concurrent.Futures;
import com.google.common.util.concurrent.MoreExecutors;
import com.google.protobuf.ByteString;
import io.grpc.Status;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import org.ferry.proto.ErrorReasons;
import org.ferry.proto.ServerAddress;
import org.ferry.proto.v1.DeliverRequest;
import org.ferry.proto.v1.DeliverResponse;
import org.ferry.proto.v1.FederatedItem;
import org.ferry.proto.v1.FederationGrpc;
import org.ferry.proto.v1.ItemResult;
import org.ferry.server.internal.metrics.ServerMetrics;
import org.ferry.server.internal.store.OutboundEntry;
import org.ferry.server.internal.time.ServerClock;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Delivery to one destination server: one Deliver call at a time, in batches capped by count
 * and bytes. Per item: OK or a final refusal removes it (with its outcome); RESOURCE_EXHAUSTED
 * and UNAVAILABLE keep it for later. A failed call backs off exponentially with full jitter
 * (never past the earliest expiry; the sweeper expires items); only a successful Deliver resets
 * the backoff, new items do not cut it short. While a backlog drains, batches of the oldest
 * items alternate with batches of the newest, so live traffic is not stuck behind it.
 */
final class Lane {
  private static final Logger log = LoggerFactory.getLogger(Lane.class);
  /** As many items as a peer takes in one Deliver. */
  static final int MAX_BATCH_ITEMS = FederationGrpcService.MAX_BATCH_ITEMS;
  /**
   * Weight of a batch ({@link org.ferry.server.internal.store.MailboxStore#wireWeight}): the whole
   * request must stay under the peer's 128 KiB message limit.
   */
  static final long MAX_BATCH_BYTES = 112 * 1024;
  static final Duration CALL_DEADLINE = Duration.ofSeconds(30);
  /** Batches whose outcome writes may wait at once while the next Deliver runs. */
  static final int MAX_FINISHING = 2;

  private enum State { IDLE, SCHEDULED, RUNNING, BACKING_OFF, STOPPED }

  private final ServerAddress destination;
  private final byte[] fingerprint;
  private final String peer;
  private final Outbound outbound;
  private final PeerChannels channels;
  private final FederationOptions options;
  private final ServerClock clock;
  private final ServerMetrics metrics;
  private final ScheduledExecutorService scheduler;
  private final Backoff backoff;
  private State state = State.IDLE;
  ServerAddress destination() {
    return destination;
  }

  /** New items arrived while a round ran: look again before going idle. */
  private boolean again;
  private int failures;
  private boolean newestNext;
  private ScheduledFuture<?> timer;
  /**
   * No item waits below this position: the oldest batches are read from here, not from the
   * queue's start, which would step over the tombstones of every item delivered since the last
   * compaction (each round slower than the one before).
   */
  private long from;
  /** Batches whose outcomes are being written; see {@link #MAX_FINISHING}. */
  private int finishing;
  /** The next round's delay, held back while {@link #MAX_FINISHING} batches' writes wait. */
  private Duration deferred;
  /** The status code of the last failed call, for the operator's status (no addresses). */
  private String lastError = "";

  Lane(ServerAddress destination, Outbound outbound, PeerChannels channels, FederationOptions options,
      ServerClock clock, ServerMetrics metrics, ScheduledExecutorService scheduler) {
    this.destination = destination;
    this.fingerprint = destination.fingerprint();
    this.peer = destination.fingerprintText();
    this.outbound = outbound;
    this.channels = channels;
    this.options = options;
    this.clock = clock;
    this.metrics = metrics;
    this.scheduler = scheduler;
    this.backoff = new Backoff(options.retryInitial(), options.retryMax(), outbound::random);
  }

  /** New items wait: send them now unless a round runs (then it looks again) or the lane backs off. */
  synchronized void wake() {
    if (state == State.IDLE) {
      schedule(Duration.ZERO, State.SCHEDULED);
    } else if (state == State.RUNNING || state == State.SCHEDULED) {
      again = true;
    }
  }

  /** First round after a restart. */
  synchronized void startAfter(Duration delay) {
    if (state == State.IDLE) {
      schedule(delay, State.SCHEDULED);
    }
  }

  /**
   * What the lane is doing, for {@code ferry server status}: {@code state} (idle, delivering,
   * backing off), {@code failed_calls} since the last successful one, {@code next_try_seconds}
   * while backing off, {@code last_error} (a gRPC status code name, or empty).
   */
  synchronized java.util.Map<String, Object> status() {
    java.util.Map<String, Object> m = new java.util.LinkedHashMap<>();
    m.put("state", switch (state) {
      case IDLE -> "idle";
      case SCHEDULED, RUNNING -> "delivering";
      case BACKING_OFF -> "backing off";
      case STOPPED -> "stopped";
    });
    m.put("failed_calls", failures);
    if (state == State.BACKING_OFF && timer != null) {
      m.put("next_try_seconds", Math.max(0, timer.getDelay(TimeUnit.SECONDS)));
    }
    m.put("last_error", lastError);
    return m;
  }

  synchronized void stop() {
    state = State.STOPPED;
    if (timer != null) {
      timer.cancel(false);
    }
  }

  private void schedule(Duration delay, State next) {
    state = next;
    try {
      timer = scheduler.schedule(this::round, delay.toNanos(), TimeUnit.NANOSECONDS);
    } catch (RejectedExecutionException e) {
      state = State.STOPPED;
    }
  }

  private void round() {
    boolean newest;
    long start;
    synchronized (this) {
      if (state == State.STOPPED) {
        return;
      }
      state = State.RUNNING;
      again = false;
      newest = newestNext;
      start = from;
    }
    List<OutboundEntry> batch;
    try {
      batch = outbound.store().readOutbound(fingerprint, newest, start, MAX_BATCH_ITEMS, MAX_BATCH_BYTES);
    } catch (RuntimeException e) {
      log.warn("cannot read the outbound queue for {}: {}", ServerMetrics.peerLabel(peer), e.getMessage());
      failed(Duration.ZERO);
      return;
    }
    synchronized (this) {
      // Interleave only while more than two batches wait: then the newest are not in the oldest batch.
      newestNext = !newest && outbound.waiting(destination) > 2L * Math.max(1, batch.size());
      if (batch.isEmpty()) {
        if (again && state != State.STOPPED) {
          schedule(Duration.ZERO, State.SCHEDULED);
        } else if (state != State.STOPPED) {
          state = State.IDLE;
        }
        return;
      }
    }
    if (!outbound.policy().allows(fingerprint)) {
      // The operator stopped federating with this server: the items fail here, at home.
      synchronized (this) {
        lastError = "refused by this server's peer policy";
      }
      finishAll(batch, Status.Code.FAILED_PRECONDITION, ErrorReasons.PEER_REFUSED,
          "this server's operator does not federate with that server", Outbound.HOP_HOME);
      return;
    }
    DeliverRequest.Builder request = DeliverRequest.newBuilder();
    for (OutboundEntry e : batch) {
      request.addItems(FederatedItem.newBuilder()
          .setItemId(ByteString.copyFrom(e.item().itemId()))
          .setRoutingKeyId(e.item().keyId())
          .setSealedRouting(ByteString.copyFrom(e.item().sealedRouting()))
          .setBody(ByteString.copyFrom(e.item().body()))
          .setExpiresAt(e.item().expiresAt().toEpochMilli()));
    }
    FederationGrpc.FederationFutureStub stub;
    try {
      stub = FederationGrpc.newFutureStub(channels.channel(destination))
          .withDeadlineAfter(CALL_DEADLINE.toMillis(), TimeUnit.MILLISECONDS);
    } catch (IllegalStateException e) {
      return;
    }
    Futures.addCallback(stub.deliver(request.build()), new FutureCallback<DeliverResponse>() {
      @Override
      public void onSuccess(DeliverResponse response) {
        delivered(batch, response, !newest);
      }

      @Override
      public void onFailure(Throwable t) {
        callFailed(batch, t);
      }
    }, MoreExecutors.directExecutor());
  }

  /**
   * @param oldest whether the batch was read from {@link #from}: once its finished items are
   *     removed, nothing waits below its first kept item (or past its end, when none was kept)
   */
  private void delivered(List<OutboundEntry> batch, DeliverResponse response, boolean oldest) {
    synchronized (this) {
      if (state == State.STOPPED) {
        // The server is closing: the store may be closed too. The items are sent again after the restart.
        return;
      }
      failures = 0;
      lastError = "";
    }
    List<CompletableFuture<Boolean>> done = new ArrayList<>();
    long retryAfter = 0;
    int kept = 0;
    long firstKept = Long.MAX_VALUE;
    for (int i = 0; i < batch.size(); i++) {
      OutboundEntry entry = batch.get(i);
      if (i >= response.getResultsCount()) {
        kept++;
        firstKept = Math.min(firstKept, entry.seq());
        continue;
      }
      ItemResult r = response.getResults(i);
      Status.Code code = Status.fromCodeValue(r.getCode()).getCode();
      if (code == Status.Code.OK) {
        done.add(outbound.finish(entry, true, 0, "", "", ""));
      } else if (code == Status.Code.RESOURCE_EXHAUSTED || code == Status.Code.UNAVAILABLE) {
        kept++;
        firstKept = Math.min(firstKept, entry.seq());
        retryAfter = Math.max(retryAfter, r.getRetryAfterMillis());
      } else {
        done.add(outbound.finish(entry, false, r.getCode(), r.getReason(), r.getMessage(), Outbound.HOP_DESTINATION));
      }
    }
    boolean allKept = kept == batch.size();
    long next = firstKept != Long.MAX_VALUE ? firstKept : batch.get(batch.size() - 1).seq() + 1;
    long firstSettled = batch.stream().mapToLong(OutboundEntry::seq).min().orElse(Long.MAX_VALUE);
    Duration pause = allKept ? Duration.ofMillis(Math.max(retryAfter, options.retryInitial().toMillis())) : Duration.ZERO;
    synchronized (this) {
      if (state == State.STOPPED) {
        return;
      }
      if (oldest) {
        from = Math.max(from, next);
      }
      // The next Deliver goes out while this batch's outcomes are written (their fsync overlaps
      // the peer's), but never more than MAX_FINISHING batches' writes wait at once.
      finishing++;
      if (finishing < MAX_FINISHING) {
        schedule(pause, pause.isZero() ? State.SCHEDULED : State.BACKING_OFF);
      } else {
        deferred = pause;
      }
    }
    CompletableFuture.allOf(done.toArray(CompletableFuture[]::new)).whenComplete((v, e) -> {
      synchronized (this) {
        finishing--;
        if (state == State.STOPPED) {
          return;
        }
        if (e != null) {
          log.warn("cannot record outcomes for {}: {}", ServerMetrics.peerLabel(peer), e.getMessage());
          // What may still be there is read again (the peer answers a resend without storing twice).
          from = Math.min(from, firstSettled);
          if (state == State.IDLE && deferred == null) {
            schedule(options.retryInitial(), State.SCHEDULED);
          }
        }
        if (deferred != null) {
          Duration p = deferred;
          deferred = null;
          schedule(p, p.isZero() ? State.SCHEDULED : State.BACKING_OFF);
        }
      }
    });
  }

  private void callFailed(List<OutboundEntry> batch, Throwable t) {
    synchronized (this) {
      if (state == State.STOPPED) {
        return;
      }
    }
    Status status = Status.fromThrowable(t);
    if (status.getCode() == Status.Code.PERMISSION_DENIED
        && ErrorReasons.of(t).filter(ErrorReasons.PEER_REFUSED::equals).isPresent()) {
      // The destination refuses this server: final for these items.
      synchronized (this) {
        lastError = "refused by the peer (" + ErrorReasons.PEER_REFUSED + ")";
      }
      log.warn("{} refuses to federate with this server: {} items failed", ServerMetrics.peerLabel(peer), batch.size());
      finishAll(batch, Status.Code.PERMISSION_DENIED, ErrorReasons.PEER_REFUSED,
          "the destination server does not federate with this one", Outbound.HOP_DESTINATION);
      return;
    }
    metrics.federationRetry(peer);
    Throwable root = t;
    while (root.getCause() != null && root.getCause() != root) {
      root = root.getCause();
    }
    // The code, gRPC's description and the kind of the first cause (connection refused, proxy,
    // bind, TLS...), never the peer's address: enough to tell a peer that is down from a proxy
    // or bind that does not work.
    String cause = status.getCode().name()
        + (status.getDescription() == null ? "" : ": " + withoutAddresses(status.getDescription()))
        + (root == t ? "" : " (" + root.getClass().getSimpleName() + ")");
    int tries;
    synchronized (this) {
      lastError = cause;
      tries = failures + 1;
    }
    if (Integer.bitCount(tries) == 1) {
      // The first failure after a success, then the 2nd, 4th, 8th...: a dead peer cannot fill the log.
      log.warn("delivery to {} failed {} time(s) in a row: {}; backing off", ServerMetrics.peerLabel(peer), tries, cause);
    }
    Duration hint = status.getCode() == Status.Code.RESOURCE_EXHAUSTED
        ? ErrorReasons.retryAfter(t).orElse(Duration.ZERO) : Duration.ZERO;
    Instant earliest = batch.stream().map(e -> e.item().expiresAt()).min(Instant::compareTo).orElseThrow();
    failed(hint, earliest);
  }

  private void failed(Duration hint) {
    failed(hint, null);
  }

  private synchronized void failed(Duration hint, Instant earliestExpiry) {
    if (state == State.STOPPED) {
      return;
    }
    failures++;
    Duration delay = backoff.delay(failures, hint, clock.instant(), earliestExpiry);
    schedule(delay, State.BACKING_OFF);
  }

  private void finishAll(List<OutboundEntry> batch, Status.Code code, String reason, String message, String hop) {
    List<CompletableFuture<Boolean>> done = new ArrayList<>();
    for (OutboundEntry e : batch) {
      done.add(outbound.finish(e, false, code.value(), reason, message, hop));
    }
    CompletableFuture.allOf(done.toArray(CompletableFuture[]::new)).whenComplete((v, e) -> {
      synchronized (this) {
        if (state != State.STOPPED) {
          schedule(e == null ? Duration.ZERO : options.retryInitial(), State.SCHEDULED);
        }
      }
    });
  }

  private static final java.util.regex.Pattern ADDRESS = java.util.regex.Pattern.compile(
      "/?(\\d{1,3}(\\.\\d{1,3}){3}|\\[?[0-9a-fA-F]*:[0-9a-fA-F:]+\\]?)(:\\d+)?");

  /** gRPC's description on one line, at most 200 characters, with any IP address cut out. */
  static String withoutAddresses(String description) {
    String line = ADDRESS.matcher(description.replaceAll("\\s+", " ")).replaceAll("<address>");
    return line.length() > 200 ? line.substring(0, 200) + "..." : line;
  }
}
