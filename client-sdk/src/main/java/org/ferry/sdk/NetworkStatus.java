package org.ferry.sdk;

import java.time.Instant;
import java.util.List;
import java.util.Optional;

/**
 * How this client reaches one server: the carrier in use now, if connected, and how each of the
 * server's lines (its own address first, then its bridge lines) has fared.
 *
 * @param server the server's address
 * @param inUse the line carrying the connection now
 * @param lines every line, in the order they were given
 */
public record NetworkStatus(String server, Optional<String> inUse, List<Line> lines) {
  public NetworkStatus {
    lines = List.copyOf(lines);
  }

  /**
   * One line's health.
   *
   * @param backingOffUntil set while the line failed lately and is tried only after the others
   */
  public record Line(String line, long successes, long failures, Optional<Instant> lastSuccess,
      Optional<Instant> lastFailure, Optional<Instant> backingOffUntil) {}
}
