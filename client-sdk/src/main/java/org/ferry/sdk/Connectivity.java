package org.ferry.sdk;

import java.time.Instant;
import java.util.Optional;

/**
 * Whether the background loop ({@link FerryClient#start}) is connected to the home server.
 *
 * @param connected whether the receive streams are open and subscribed
 * @param carrier while connected: the bridge line in use, as {@code direct HOST:PORT} or a
 *     bridge line without its secrets (see {@link NetworkStatus})
 * @param nextRetry while offline: when the loop tries again (with exponential back-off and
 *     jitter, from 1 s up to {@link FerryClient#MAX_RECONNECT_DELAY})
 * @param lastError while offline: why the last try failed, in one line
 */
public record Connectivity(
    boolean connected, Optional<String> carrier, Optional<Instant> nextRetry, Optional<String> lastError) {

  static Connectivity online(Optional<String> carrier) {
    return new Connectivity(true, carrier, Optional.empty(), Optional.empty());
  }

  static Connectivity offline(Instant nextRetry, String error) {
    return new Connectivity(false, Optional.empty(), Optional.of(nextRetry), Optional.of(error));
  }
}
