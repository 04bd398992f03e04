package org.ferry.server.internal.time;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.Optional;
import org.ferry.server.testing.MutableClock;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The server's now: follows the wall clock, never back, forward no faster than twice time passing. */
class ServerClockTest {
  private static final Instant T = Instant.parse("2026-06-01T12:00:00Z");

  @TempDir Path dir;

  private final MutableClock wall = new MutableClock(T);

  private ServerClock clock(Optional<Instant> highWater) {
    return new ServerClock(wall, wall::nanoTime, highWater);
  }

  @Test
  void followsTheWallClockWhileNoOneStepsIt() {
    ServerClock clock = clock(Optional.empty());
    assertEquals(T, clock.instant());
    wall.advance(Duration.ofDays(3));
    assertEquals(T.plus(Duration.ofDays(3)), clock.instant());
  }

  @Test
  void afterAStepBackGoesOnAtThePaceOfTimePassing() {
    ServerClock clock = clock(Optional.empty());
    wall.stepWall(Duration.ofHours(-1));
    assertEquals(T, clock.instant());
    wall.advance(Duration.ofSeconds(10));
    assertEquals(T.plusSeconds(10), clock.instant());
  }

  @Test
  void afterAStepForwardCatchesUpAtMostOneExtraSecondPerSecond() {
    ServerClock clock = clock(Optional.empty());
    wall.stepWall(Duration.ofHours(1));
    assertEquals(T, clock.instant(), "no time passed, so no time goes by");
    wall.advance(Duration.ofSeconds(10));
    assertEquals(T.plusSeconds(20), clock.instant());
    // Many small readings catch up no faster than one large one.
    for (int i = 0; i < 1000; i++) {
      wall.advance(Duration.ofMillis(10));
      clock.instant();
    }
    assertEquals(T.plusSeconds(40), clock.instant());
    wall.advance(Duration.ofHours(2));
    assertEquals(T.plus(Duration.ofHours(3)).plusSeconds(20), clock.instant(), "caught up, then follows the wall");
  }

  @Test
  void aRestartAfterAStepBackStartsFromTheSavedNow() throws IOException {
    ServerClock before = clock(Optional.empty());
    wall.advance(Duration.ofMinutes(5));
    before.save(dir.resolve("clock"));
    wall.stepWall(Duration.ofHours(-1));
    ServerClock after = clock(ServerClock.load(dir.resolve("clock")));
    assertEquals(T.plus(Duration.ofMinutes(5)), after.instant());
    wall.advance(Duration.ofSeconds(2));
    assertEquals(T.plus(Duration.ofMinutes(5)).plusSeconds(2), after.instant());
  }

  @Test
  void aRestartTakesTheWallClockWhenItIsAhead() throws IOException {
    clock(Optional.empty()).save(dir.resolve("clock"));
    wall.stepWall(Duration.ofDays(2));
    assertEquals(T.plus(Duration.ofDays(2)), clock(ServerClock.load(dir.resolve("clock"))).instant());
  }

  @Test
  void aDamagedSavedNowIsRefusedNamingTheFile() throws IOException {
    Files.writeString(dir.resolve("clock"), "yesterday\n");
    IOException e = assertThrows(IOException.class, () -> ServerClock.load(dir.resolve("clock")));
    assertEquals(true, e.getMessage().contains(dir.resolve("clock").toString()), e.getMessage());
    assertEquals(Optional.empty(), ServerClock.load(dir.resolve("none")));
  }
}
