package org.ferry.it;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.ferry.sdk.FerryClient;
import org.ferry.sdk.FerryListener;
import org.ferry.sdk.ReceivedMessage;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * How the always-on client hands its local inbox to the app's listeners while many messages wait
 * in it: in arrival order, and nothing forgotten that no listener took.
 */
class InboxHandOverTest {
  private static final Duration BOUND = Duration.ofSeconds(60);

  @TempDir Path dir;

  /** What the test does with Alice's client while Bob's messages arrive. */
  private interface Scenario {
    void run(RunningServer server, FerryClient alice, FerryClient bob) throws Exception;
  }

  /** Alice (whose clock is {@code aliceClock}) and Bob paired on one server, for {@code scenario}. */
  private void paired(Clock aliceClock, Scenario scenario) throws Exception {
    try (RunningServer server = RunningServer.configured(dir.resolve("server"),
        b -> b.metricsListen(new InetSocketAddress("127.0.0.1", 0)))) {
      try (FerryClient alice = TestClients.open(dir, "alice", aliceClock);
          FerryClient bob = TestClients.open(dir, "bob")) {
        alice.initialize(server.address());
        bob.initialize(server.address());
        bob.acceptInvitation(alice.createInvitation("bob").uri(), "alice");
        scenario.run(server, alice, bob);
      }
    }
  }

  /**
   * A listener that is busy with its first message until {@code release} (so that the others
   * wait in the inbox meanwhile), then keeps it in {@code got}; with {@code leaveAfterFirst} it
   * removes itself before returning, as an app screen that closes.
   */
  private static FerryListener busyApp(FerryClient client, CountDownLatch release, List<String> got,
      boolean leaveAfterFirst) {
    return new FerryListener() {
      @Override
      public void onMessage(ReceivedMessage m) {
        try {
          release.await(BOUND.toSeconds(), TimeUnit.SECONDS);
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
        }
        got.add(m.text());
        if (leaveAfterFirst) {
          client.removeListener(this);
        }
      }
    };
  }

  /** Bob sends {@code n} messages; returns once Alice's client has them all in its local inbox. */
  private static List<String> bobSends(RunningServer server, FerryClient bob, int n) throws Exception {
    List<String> sent = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      bob.send("alice", "m" + i);
      sent.add("m" + i);
    }
    // Alice's client has all of them once the server has nothing left for her (it acks each one
    // only after writing it to her inbox).
    await().atMost(BOUND).until(() -> queued(server) == 0);
    return sent;
  }

  @Test
  void messagesThatWaitInTheInboxWithOneReceiveTimeAreHandedOverInArrivalOrder() throws Exception {
    // Alice's clock stands still: every arrival has the same receive time.
    paired(Clock.fixed(Instant.now(), ZoneOffset.UTC), (server, alice, bob) -> {
      CountDownLatch release = new CountDownLatch(1);
      List<String> got = new CopyOnWriteArrayList<>();
      alice.addListener(busyApp(alice, release, got, false));
      alice.start();
      List<String> sent = bobSends(server, bob, 30);
      release.countDown();
      await().atMost(BOUND).until(() -> got.size() >= sent.size());
      assertEquals(sent, got);
    });
  }

  @Test
  void messagesWaitingWhenTheLastListenerIsRemovedStayForTheNextReceive() throws Exception {
    paired(Clock.systemUTC(), (server, alice, bob) -> {
      CountDownLatch release = new CountDownLatch(1);
      List<String> got = new CopyOnWriteArrayList<>();
      alice.addListener(busyApp(alice, release, got, true));
      alice.start();
      List<String> sent = bobSends(server, bob, 5);
      // The listener takes the first message and leaves while the other four wait.
      release.countDown();
      await().atMost(BOUND).until(() -> got.size() >= 1);
      List<String> later = new ArrayList<>();
      await().atMost(BOUND).until(() -> {
        alice.receive(Duration.ofMillis(200), m -> later.add(m.text()));
        return later.size() >= sent.size() - 1;
      });
      assertEquals(List.of("m0"), got);
      assertEquals(sent.subList(1, sent.size()), later);
    });
  }

  private static long queued(RunningServer server) throws Exception {
    return Math.round(PrometheusText.sum(server.metricsAddress().orElseThrow(), "ferry_queue_envelopes"));
  }
}
