package org.ferry.server.internal.mailbox;

import java.time.Clock;
import java.time.Duration;
import java.time.Instant;

/** A rate limit on an injected clock: {@code burst} at once, then {@code perSecond}. */
final class TokenBucket {
  private final Clock clock;
  private final double perSecond;
  private final double burst;
  private double tokens;
  private Instant refilled;

  TokenBucket(Clock clock, double perSecond, int burst) {
    this.clock = clock;
    this.perSecond = perSecond;
    this.burst = burst;
    this.tokens = burst;
    this.refilled = clock.instant();
  }

  /** Takes a token; if there is none, how long until there will be one. */
  synchronized Duration tryTake() {
    Instant now = clock.instant();
    if (now.isAfter(refilled)) {
      double elapsed = Duration.between(refilled, now).toNanos() / 1e9;
      tokens = Math.min(burst, tokens + elapsed * perSecond);
      refilled = now;
    }
    if (tokens >= 1) {
      tokens -= 1;
      return Duration.ZERO;
    }
    return Duration.ofNanos((long) Math.ceil((1 - tokens) / perSecond * 1e9));
  }
}
