package org.ferry.server.internal.mailbox;

import java.time.Duration;
import java.util.function.LongSupplier;

/**
 * A rate limit on a monotonic ticker ({@link System#nanoTime()} or a test's): {@code burst} at
 * once, then {@code perSecond}. Steps of the wall clock neither lock it up nor refill it.
 */
final class TokenBucket {
  private final LongSupplier ticker;
  private final double perSecond;
  private final double burst;
  private double tokens;
  private long refilled;

  TokenBucket(LongSupplier ticker, double perSecond, int burst) {
    this.ticker = ticker;
    this.perSecond = perSecond;
    this.burst = burst;
    this.tokens = burst;
    this.refilled = ticker.getAsLong();
  }

  /** Takes a token; if there is none, how long until there will be one. */
  synchronized Duration tryTake() {
    long now = ticker.getAsLong();
    long elapsed = now - refilled;
    if (elapsed > 0) {
      tokens = Math.min(burst, tokens + elapsed / 1e9 * perSecond);
      refilled = now;
    }
    if (tokens >= 1) {
      tokens -= 1;
      return Duration.ZERO;
    }
    return Duration.ofNanos((long) Math.ceil((1 - tokens) / perSecond * 1e9));
  }
}
