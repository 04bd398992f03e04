package org.ferry.server.internal.federation;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.time.Duration;
import java.time.Instant;
import org.junit.jupiter.api.Test;

class BackoffTest {
  private static final Instant NOW = Instant.parse("2026-03-01T00:00:00Z");

  @Test
  void ceilingDoublesFromOneSecondAndStopsAtFiveMinutes() {
    Backoff b = new Backoff(Duration.ofSeconds(1), Duration.ofMinutes(5), () -> 0.5);
    assertEquals(Duration.ofSeconds(1), b.ceiling(1));
    assertEquals(Duration.ofSeconds(2), b.ceiling(2));
    assertEquals(Duration.ofSeconds(256), b.ceiling(9));
    assertEquals(Duration.ofMinutes(5), b.ceiling(10));
    assertEquals(Duration.ofMinutes(5), b.ceiling(1000));
  }

  @Test
  void delayIsAJitteredPartOfTheCeilingFlooredByTheHintAndNeverPastTheEarliestExpiry() {
    Backoff half = new Backoff(Duration.ofSeconds(1), Duration.ofMinutes(5), () -> 0.5);
    assertEquals(Duration.ofSeconds(4), half.delay(4, Duration.ZERO, NOW, null));
    assertEquals(Duration.ofSeconds(30), half.delay(4, Duration.ofSeconds(30), NOW, null));
    assertEquals(Duration.ofSeconds(3), half.delay(4, Duration.ZERO, NOW, NOW.plusSeconds(3)));
    assertEquals(Duration.ZERO, half.delay(4, Duration.ZERO, NOW, NOW.minusSeconds(3)));
    Backoff none = new Backoff(Duration.ofSeconds(1), Duration.ofMinutes(5), () -> 0.0);
    // Full jitter: the very first retry may go at once.
    assertEquals(Duration.ZERO, none.delay(1, Duration.ZERO, NOW, null));
  }
}
