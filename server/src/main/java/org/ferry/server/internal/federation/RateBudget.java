package org.ferry.server.internal.federation;

import java.time.Duration;
import java.util.function.LongSupplier;

/**
 * Two token buckets on a monotonic ticker: items per second and bytes per second, each with a
 * burst of {@link #BURST_SECONDS} seconds' worth (at least one item and one largest body). A
 * take that does not fit takes nothing and says how long to wait.
 */
final class RateBudget {
  static final double BURST_SECONDS = 10;
  private final LongSupplier ticker;
  private final double itemsPerSecond;
  private final double bytesPerSecond;
  private final double itemBurst;
  private final double byteBurst;
  private double items;
  private double bytes;
  private long refilled;

  RateBudget(LongSupplier ticker, double itemsPerSecond, double bytesPerSecond) {
    if (!(itemsPerSecond > 0) || !(bytesPerSecond > 0)) {
      throw new IllegalArgumentException("rates must be positive: " + itemsPerSecond + "/s, " + bytesPerSecond + " B/s");
    }
    this.ticker = ticker;
    this.itemsPerSecond = itemsPerSecond;
    this.bytesPerSecond = bytesPerSecond;
    this.itemBurst = Math.max(1, itemsPerSecond * BURST_SECONDS);
    this.byteBurst = Math.max(128 * 1024, bytesPerSecond * BURST_SECONDS);
    this.items = itemBurst;
    this.bytes = byteBurst;
    this.refilled = ticker.getAsLong();
  }

  /** Takes {@code n} items of {@code size} bytes in all; if they do not fit, how long until they would. */
  synchronized Duration tryTake(int n, long size) {
    long now = ticker.getAsLong();
    long elapsed = now - refilled;
    if (elapsed > 0) {
      items = Math.min(itemBurst, items + elapsed / 1e9 * itemsPerSecond);
      bytes = Math.min(byteBurst, bytes + elapsed / 1e9 * bytesPerSecond);
      refilled = now;
    }
    double wantItems = Math.min(n, itemBurst);
    double wantBytes = Math.min(size, byteBurst);
    if (items >= wantItems && bytes >= wantBytes) {
      items -= wantItems;
      bytes -= wantBytes;
      return Duration.ZERO;
    }
    double wait = Math.max((wantItems - items) / itemsPerSecond, (wantBytes - bytes) / bytesPerSecond);
    return Duration.ofNanos((long) Math.ceil(Math.max(wait, 0.001) * 1e9));
  }
}
