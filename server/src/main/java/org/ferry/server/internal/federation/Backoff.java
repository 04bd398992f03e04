package org.ferry.server.internal.federation;

import java.time.Duration;
import java.time.Instant;
import java.util.function.DoubleSupplier;

/**
 * Exponential backoff with full jitter (a uniformly random delay up to the ceiling), the ceiling
 * doubling per failure from {@code initial} up to {@code max}; a peer's retry hint is a floor, and
 * the delay never runs past the earliest expiry of what waits (the sweeper expires it then).
 */
final class Backoff {
  private final Duration initial;
  private final Duration max;
  private final DoubleSupplier random;

  /** @param random uniform in [0, 1) */
  Backoff(Duration initial, Duration max, DoubleSupplier random) {
    this.initial = initial;
    this.max = max;
    this.random = random;
  }

  /** The ceiling after {@code failures} failed attempts in a row (at least 1). */
  Duration ceiling(int failures) {
    long nanos = initial.toNanos() << Math.min(Math.max(failures, 1) - 1, 30);
    return nanos <= 0 || nanos > max.toNanos() ? max : Duration.ofNanos(nanos);
  }

  /** The delay before the next attempt. */
  Duration delay(int failures, Duration hint, Instant now, Instant earliestExpiry) {
    Duration delay = Duration.ofNanos((long) (random.getAsDouble() * ceiling(failures).toNanos()));
    if (delay.compareTo(hint) < 0) {
      delay = hint;
    }
    if (earliestExpiry != null) {
      Duration untilExpiry = Duration.between(now, earliestExpiry);
      if (delay.compareTo(untilExpiry) > 0) {
        delay = untilExpiry.isNegative() ? Duration.ZERO : untilExpiry;
      }
    }
    return delay;
  }
}
