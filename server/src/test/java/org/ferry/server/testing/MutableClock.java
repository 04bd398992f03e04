package org.ferry.server.testing;

import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneId;
import java.time.ZoneOffset;

/**
 * A wall clock and a monotonic ticker that tests move by hand: {@link #advance} is time passing
 * (both move), {@link #stepWall} is the wall clock being set (NTP, {@code date}, a snapshot
 * restored), with no time passing.
 */
public final class MutableClock extends Clock {
  private volatile Instant now;
  private volatile long nanos;

  public MutableClock(Instant start) {
    this.now = start;
  }

  /** Time passes: the wall clock and the monotonic ticker both move by {@code d}. */
  public synchronized void advance(Duration d) {
    now = now.plus(d);
    nanos += d.toNanos();
  }

  /** The wall clock is set {@code d} forward (or back, if negative); no time passes. */
  public synchronized void stepWall(Duration d) {
    now = now.plus(d);
  }

  /** The monotonic ticker, as {@link System#nanoTime()}: only differences mean anything. */
  public long nanoTime() {
    return nanos;
  }

  @Override
  public Instant instant() {
    return now;
  }

  @Override
  public ZoneId getZone() {
    return ZoneOffset.UTC;
  }

  @Override
  public Clock withZone(ZoneId zone) {
    return this;
  }
}
