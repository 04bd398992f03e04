package org.ferry.sdk.cli.daemon;

import java.time.Duration;
import java.util.function.BooleanSupplier;
import org.ferry.sdk.FerryClient;
import org.ferry.sdk.FerryException;
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
      BooleanSupplier callerGone) throws InterruptedException {
    awaitConnected(client, callerGone);
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

  /** How long a receive waits for the background loop to connect: 30 s. */
  static final Duration CONNECT_PATIENCE = Duration.ofSeconds(30);

  /**
   * Waits (checking every 50 ms) until the background loop is connected, as a receive
   * in-process connects before its idle timeout starts: else a daemon that has just started, or
   * is reconnecting, would answer "nothing new" for messages waiting on the server.
   *
   * @throws FerryException UNREACHABLE if it is not connected within {@link #CONNECT_PATIENCE}
   */
  static void awaitConnected(FerryClient client, BooleanSupplier callerGone) throws InterruptedException {
    long deadline = System.nanoTime() + CONNECT_PATIENCE.toNanos();
    while (client.isRunning() && !client.connectivity().connected() && !callerGone.getAsBoolean()) {
      if (System.nanoTime() - deadline > 0) {
        throw new FerryException(FerryException.Reason.UNREACHABLE, "cannot reach the home server"
            + client.connectivity().lastError().map(e -> ": " + e).orElse("") + " (the daemon keeps trying)");
      }
      Thread.sleep(50);
    }
  }
}
