package org.ferry.server.internal.federation;

import io.grpc.Status;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.LongSupplier;
import org.ferry.proto.ErrorReasons;
import org.ferry.proto.ServerAddress;

/**
 * Which peers this server federates with, and how much each may send: allow and deny lists,
 * a budget per allowed or known peer, one shared budget for all unknown peers in open mode.
 * "Known" peers are the ones this server has queued items for.
 */
final class PeerPolicy {
  /** Budget bytes counted per item for the shared budgets that have no bytes rate of their own. */
  static final long BYTES_PER_ITEM = 64 * 1024;
  /** Most peers with a budget of their own; beyond it, known peers share the unknown budget. */
  private static final int MAX_TRACKED = 10_000;

  private final FederationOptions options;
  private final LongSupplier ticker;
  private final Map<String, RateBudget> perPeer = new ConcurrentHashMap<>();
  private final Map<String, Boolean> known = new ConcurrentHashMap<>();
  private final RateBudget unknown;

  PeerPolicy(FederationOptions options, LongSupplier ticker) {
    this.options = options;
    this.ticker = ticker;
    this.unknown = new RateBudget(ticker, options.unknownItemsPerSecond(),
        options.unknownItemsPerSecond() * BYTES_PER_ITEM);
  }

  /** Whether this server may talk to the peer at all (both ways). */
  boolean allows(byte[] fingerprint) {
    String fp = ServerAddress.fingerprintText(fingerprint);
    if (options.mode() == FederationOptions.Mode.OFF || options.deny().contains(fp)) {
      return false;
    }
    return options.mode() == FederationOptions.Mode.OPEN || options.allow().contains(fp);
  }

  /** Remembers a destination this server sends to: its replies get a budget of their own. */
  void know(byte[] fingerprint) {
    if (known.size() < MAX_TRACKED) {
      known.put(ServerAddress.fingerprintText(fingerprint), Boolean.TRUE);
    }
  }

  /**
   * Checks a peer's call: PERMISSION_DENIED (PEER_REFUSED) if policy refuses the peer,
   * RESOURCE_EXHAUSTED (RATE_LIMITED, with RetryInfo) over its budget.
   */
  void admit(byte[] fingerprint, int items, long bytes) {
    if (!allows(fingerprint)) {
      throw ErrorReasons.withReason(Status.Code.PERMISSION_DENIED, ErrorReasons.PEER_REFUSED,
          "this server does not federate with yours");
    }
    String fp = ServerAddress.fingerprintText(fingerprint);
    RateBudget budget = options.allow().contains(fp) || known.containsKey(fp)
        ? perPeer.computeIfAbsent(fp, k -> new RateBudget(ticker, options.peerItemsPerSecond(),
            options.peerBytesPerSecond()))
        : unknown;
    Duration wait = budget.tryTake(items, bytes);
    if (!wait.isZero()) {
      throw ErrorReasons.withRetry(Status.Code.RESOURCE_EXHAUSTED, ErrorReasons.RATE_LIMITED,
          "over this server's federation budget for your server; try again later", wait);
    }
  }
}
