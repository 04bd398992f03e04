package org.ferry.server.internal.time;

import com.google.common.math.LongMath;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Instant;
import java.time.ZoneId;
import java.time.ZoneOffset;
import java.util.Optional;
import java.util.function.LongSupplier;
import org.ferry.datadir.PrivateFiles;

/**
 * The server's "now" for absolute expiries (envelope and invitation TTLs), kept honest when the
 * wall clock is stepped (NTP, an operator's {@code date}, a VM restored from a snapshot):
 *
 * <ul>
 *   <li>It never goes back. After the wall clock steps back, it goes on from where it was at the
 *       pace of the monotonic ticker ({@link System#nanoTime()}): an envelope with a 2 s TTL
 *       expires 2 s later whatever the wall clock says.
 *   <li>After a step forward it catches up with the wall clock at most at twice the pace of time
 *       passing (one extra second per second), so a TTL runs out no sooner than half of it
 *       has really passed, instead of everything expiring at once.
 *   <li>It starts at the later of the wall clock and the last "now" saved in the data directory
 *       ({@link #save}), so a restart does not undo it either. Across a restart the wall clock is
 *       taken as it is when it is ahead (the server cannot tell how long it was down).
 * </ul>
 *
 * <p>Durations and rates (rate limits, backoffs) do not use this clock's instant at all but the
 * ticker, {@link #nanoTime()}.
 */
public final class ServerClock extends Clock {
  /** Extra nanoseconds of server time per nanosecond passed while catching up with the wall clock. */
  static final long CATCH_UP = 1;

  private final Clock wall;
  private final LongSupplier ticker;
  private long nowNanos;
  private long lastTick;

  /**
   * @param wall the wall clock (the system's UTC clock, or a test's)
   * @param ticker monotonic nanoseconds, as {@link System#nanoTime()}
   * @param highWater the latest "now" a previous run saw, if any; the clock never starts before it
   */
  public ServerClock(Clock wall, LongSupplier ticker, Optional<Instant> highWater) {
    this.wall = wall;
    this.ticker = ticker;
    long start = epochNanos(wall.instant());
    this.nowNanos = highWater.map(h -> Math.max(start, epochNanos(h))).orElse(start);
    this.lastTick = ticker.getAsLong();
  }

  /** The system clock and {@link System#nanoTime()}, with no earlier "now". */
  public static ServerClock system() {
    return new ServerClock(Clock.systemUTC(), System::nanoTime, Optional.empty());
  }

  /** The monotonic ticker in nanoseconds, for durations and rates; only differences mean anything. */
  public long nanoTime() {
    return ticker.getAsLong();
  }

  @Override
  public synchronized Instant instant() {
    long tick = ticker.getAsLong();
    long passed = Math.max(0, tick - lastTick);
    lastTick = tick;
    long floor = LongMath.saturatedAdd(nowNanos, passed);
    long ceiling = LongMath.saturatedAdd(floor, LongMath.saturatedMultiply(passed, CATCH_UP));
    long wallNanos = epochNanos(wall.instant());
    nowNanos = Math.min(Math.max(wallNanos, floor), ceiling);
    return Instant.ofEpochSecond(0, nowNanos);
  }

  /** Saves the current "now" to {@code file} (replacing it), for the next start to begin from. */
  public void save(Path file) throws IOException {
    PrivateFiles.write(file, instant().toString() + "\n");
  }

  /**
   * The "now" saved in {@code file}; empty if there is none.
   *
   * @throws IOException if it cannot be read or is damaged (naming the file and what to do)
   */
  public static Optional<Instant> load(Path file) throws IOException {
    String text;
    try {
      text = Files.readString(file, StandardCharsets.US_ASCII).strip();
    } catch (NoSuchFileException e) {
      return Optional.empty();
    }
    try {
      return Optional.of(Instant.parse(text));
    } catch (java.time.format.DateTimeParseException e) {
      throw new IOException(file + " is damaged; delete it (expiries then follow the wall clock) and start again", e);
    }
  }

  @Override
  public ZoneId getZone() {
    return ZoneOffset.UTC;
  }

  @Override
  public Clock withZone(ZoneId zone) {
    throw new UnsupportedOperationException("the server's clock is UTC only");
  }

  private static long epochNanos(Instant t) {
    try {
      return Math.addExact(Math.multiplyExact(t.getEpochSecond(), 1_000_000_000L), t.getNano());
    } catch (ArithmeticException e) {
      return t.getEpochSecond() < 0 ? Long.MIN_VALUE : Long.MAX_VALUE;
    }
  }
}
