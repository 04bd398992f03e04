package org.ferry.sdk.internal.dial;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneId;
import java.time.ZoneOffset;
import java.util.List;
import java.util.Optional;
import java.util.Random;
import java.util.concurrent.atomic.AtomicReference;
import org.ferry.proto.BridgeLine;
import org.ferry.proto.ServerAddress;
import org.ferry.sdk.internal.store.LocalStore;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class RouteBookTest {
  private static final byte[] KEY = new byte[32];
  private static final ServerAddress SERVER = new ServerAddress("203.0.113.7", 7443, new byte[32]);
  private static final BridgeLine DIRECT = BridgeLine.parse("direct 203.0.113.7:7443");
  private static final BridgeLine WS = BridgeLine.parse("ws wss://198.51.100.4:443/abcdefghijklmnop");
  private static final BridgeLine POLL = BridgeLine.parse("poll https://198.51.100.4:443/abcdefghijklmnop");
  private static final BridgeLine OBFS4 = BridgeLine.parse("obfs4 198.51.100.4:8444 cert=" + "c".repeat(70) + " iat-mode=0");

  @TempDir Path dir;
  private final SteppedClock clock = new SteppedClock();
  private final AtomicReference<String> network = new AtomicReference<>("home");

  private static final class SteppedClock extends Clock {
    Instant now = Instant.parse("2026-11-22T10:00:00Z");

    void advance(Duration d) {
      now = now.plus(d);
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

  private RouteBook book(LocalStore store) {
    return new RouteBook(store, clock, new Random(1), network::get);
  }

  @Test
  void theServersOwnAddressComesFirstThenBridgesInTheOrderGiven() {
    try (LocalStore store = LocalStore.open(dir, KEY); RouteBook routes = book(store)) {
      routes.addBridges(SERVER, List.of(WS, POLL, OBFS4, WS), true);
      assertEquals(List.of(DIRECT, WS, POLL, OBFS4), routes.plan(SERVER));
      assertEquals(List.of(WS, POLL, OBFS4), routes.bridges(SERVER));
    }
  }

  @Test
  void linesSharedWithOthersAreThoseThatWorkThenUntriedOnesNeverFailingOnesFirst() {
    try (LocalStore store = LocalStore.open(dir, KEY); RouteBook routes = book(store)) {
      routes.addBridges(SERVER, List.of(WS, POLL, OBFS4), true);
      routes.failed(SERVER, WS);
      routes.succeeded(SERVER, OBFS4);
      assertEquals(List.of(OBFS4, POLL), routes.shareable(SERVER, 2));
      assertEquals(List.of(OBFS4, POLL, WS), routes.shareable(SERVER, 4));
    }
  }

  @Test
  void whatWorkedOnThisNetworkGoesFirstAndIsRememberedAcrossRestarts() {
    try (LocalStore store = LocalStore.open(dir, KEY)) {
      try (RouteBook routes = book(store)) {
        routes.addBridges(SERVER, List.of(WS, POLL, OBFS4), true);
        routes.failed(SERVER, DIRECT);
        routes.succeeded(SERVER, OBFS4);
      }
      try (RouteBook again = book(store)) {
        assertEquals(OBFS4, again.plan(SERVER).get(0));
        assertEquals(DIRECT, again.plan(SERVER).get(3), "the failed line waits at the end");
        network.set("cafe");
        assertEquals(List.of(WS, POLL, OBFS4, DIRECT), again.plan(SERVER),
            "on another network nothing is assumed, but the failure still counts");
      }
    }
  }

  @Test
  void aFailedLineBacksOffWithGrowingJitteredDelaysAndComesBackAfterThem() {
    try (LocalStore store = LocalStore.open(dir, KEY); RouteBook routes = book(store)) {
      routes.addBridges(SERVER, List.of(WS), true);
      long previous = 0;
      for (int i = 1; i <= 5; i++) {
        routes.failed(SERVER, DIRECT);
        Instant until = routes.health(SERVER).get(0).backingOffUntil().orElseThrow();
        long delay = Duration.between(clock.instant(), until).toMillis();
        long base = RouteBook.BACKOFF_BASE.toMillis() << (i - 1);
        assertTrue(delay >= base / 2 && delay <= base * 3 / 2, "delay " + delay + " around " + base);
        assertTrue(i < 3 || delay > previous / 2, "delays grow");
        previous = delay;
      }
      assertEquals(List.of(WS, DIRECT), routes.plan(SERVER));
      clock.advance(RouteBook.BACKOFF_BASE.multipliedBy(32));
      assertEquals(List.of(DIRECT, WS), routes.plan(SERVER), "after its back-off the line is in its place again");
      routes.succeeded(SERVER, DIRECT);
      assertEquals(0, routes.health(SERVER).get(0).consecutiveFailures());
    }
  }

  @Test
  void aBridgeThatAnswersForADeadServerIsNotBackedOff() {
    try (LocalStore store = LocalStore.open(dir, KEY); RouteBook routes = book(store)) {
      routes.addBridges(SERVER, List.of(WS, POLL), true);
      routes.failed(SERVER, WS);
      assertTrue(routes.health(SERVER).get(1).backingOffUntil().isPresent());
      routes.bridgeAnswered(SERVER, WS);
      RouteBook.Health ws = routes.health(SERVER).get(1);
      assertEquals(Optional.empty(), ws.backingOffUntil(), "the bridge works; its server does not");
      assertEquals(0, ws.consecutiveFailures());
      assertEquals(List.of(DIRECT, WS, POLL), routes.plan(SERVER));
    }
  }

  @Test
  void betterLinesAreProbedAgainAfterAWhile() {
    try (LocalStore store = LocalStore.open(dir, KEY); RouteBook routes = book(store)) {
      routes.addBridges(SERVER, List.of(WS, OBFS4), true);
      routes.succeeded(SERVER, OBFS4);
      assertEquals(OBFS4, routes.plan(SERVER).get(0));
      clock.advance(RouteBook.REPROBE_AFTER);
      assertEquals(List.of(DIRECT, WS, OBFS4), routes.plan(SERVER), "the lines given first get a chance");
      assertEquals(OBFS4, routes.plan(SERVER).get(0), "and then what works leads again");
    }
  }

  @Test
  void aClockSteppedBackNeitherStretchesABackOffNorPutsOffTheNextProbe() {
    try (LocalStore store = LocalStore.open(dir, KEY); RouteBook routes = book(store)) {
      routes.addBridges(SERVER, List.of(WS, OBFS4), true);
      routes.succeeded(SERVER, OBFS4);
      routes.plan(SERVER);
      routes.failed(SERVER, WS);
      clock.advance(Duration.ofHours(-1));
      clock.advance(RouteBook.BACKOFF_BASE.multipliedBy(2));
      assertEquals(Optional.empty(), routes.health(SERVER).get(1).backingOffUntil(),
          "a back-off of seconds lasted for the hour the clock went back");
      assertEquals(List.of(DIRECT, WS, OBFS4), routes.plan(SERVER),
          "the better lines are probed again without waiting out the step");
    }
  }
}
