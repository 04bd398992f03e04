package org.ferry.sdk.cli.daemon;

import java.time.Duration;
import java.util.function.BooleanSupplier;
import org.ferry.sdk.FerryClient;
import org.ferry.sdk.MessageListener;

/**
 * A receive for a caller of the daemon: {@link FerryClient#receive(Duration, int,
 * MessageListener)} in slices of at most a second, so that a caller who went away (a closed
 * connection) ends it within a second instead of at its idle timeout (up to a day).
 */
public final class SlicedReceive {
  static final Duration SLICE = Duration.ofSeconds(1);

  private SlicedReceive() {}

  /**
   * Receives until nothing new came for {@code idle}, {@code max} messages were handed over, or
   * {@code callerGone} says so (checked between slices).
   *
   * @return how many messages were handed to {@code listener}
   */
  public static int receive(FerryClient client, Duration idle, int max, MessageListener listener,
      BooleanSupplier callerGone) {
    Duration left = idle;
    int taken = 0;
    while (true) {
      Duration slice = left.compareTo(SLICE) < 0 ? left : SLICE;
      int n = client.receive(slice, max - taken, listener);
      taken += n;
      if (taken >= max || callerGone.getAsBoolean()) {
        return taken;
      }
      left = n > 0 ? idle : left.minus(slice);
      if (n == 0 && (left.isNegative() || left.isZero())) {
        return taken;
      }
    }
  }
}
