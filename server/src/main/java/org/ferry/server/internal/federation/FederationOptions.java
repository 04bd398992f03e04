package org.ferry.server.internal.federation;

import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.Optional;
import java.util.Set;

/**
 * How a server federates; see {@code docs/operators.md}, "Federation".
 *
 * @param mode open (any peer, unknown ones under one shared budget), allowlist (only listed
 *     peers), off (no federation at all)
 * @param allow fingerprints (base64url text) always allowed, each with its own budget
 * @param deny fingerprints refused in every mode, both ways
 * @param peerItemsPerSecond, peerBytesPerSecond each allowed or known peer's inbound budget
 * @param unknownItemsPerSecond the one budget all unknown peers share in open mode (bytes: 64
 *     KiB per item)
 * @param forwardItemsPerSecond each forwarder's (client's) budget for Forward and ForwardTake
 *     (bytes: 64 KiB per item)
 * @param bind source address of outgoing federation connections, if set
 * @param proxy SOCKS5 proxy for outgoing federation connections, if set
 * @param retryInitial, retryMax the delivery backoff: full jitter, doubling from the first to
 *     the second
 * @param maxQueuedPerPeer most items queued for one destination
 */
public record FederationOptions(
    Mode mode,
    Set<String> allow,
    Set<String> deny,
    double peerItemsPerSecond,
    double peerBytesPerSecond,
    double unknownItemsPerSecond,
    double forwardItemsPerSecond,
    Optional<InetAddress> bind,
    Optional<InetSocketAddress> proxy,
    Duration retryInitial,
    Duration retryMax,
    long maxQueuedPerPeer) {

  public enum Mode { OPEN, ALLOWLIST, OFF }

  public static final FederationOptions DEFAULTS = new FederationOptions(Mode.OPEN, Set.of(), Set.of(),
      200, 8 << 20, 200, 50, Optional.empty(), Optional.empty(), Duration.ofSeconds(1), Duration.ofMinutes(5),
      100_000);

  public FederationOptions {
    allow = Set.copyOf(allow);
    deny = Set.copyOf(deny);
    if (!(peerItemsPerSecond > 0) || !(peerBytesPerSecond > 0) || !(unknownItemsPerSecond > 0)
        || !(forwardItemsPerSecond > 0)) {
      throw new IllegalArgumentException("federation rates must be positive");
    }
    if (retryInitial.isNegative() || retryInitial.isZero() || retryMax.compareTo(retryInitial) < 0) {
      throw new IllegalArgumentException("retry backoff must be positive, its cap at least its start: "
          + retryInitial + ", " + retryMax);
    }
    if (maxQueuedPerPeer < 1) {
      throw new IllegalArgumentException("max queued per peer must be positive: " + maxQueuedPerPeer);
    }
  }
}
