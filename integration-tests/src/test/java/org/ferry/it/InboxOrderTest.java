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
 * Messages reach the app in the order they arrived, even when many wait in the inbox with the
 * same receive time (a burst of redeliveries after a reconnect, on a busy machine).
 */
class InboxOrderTest {
  private static final Duration BOUND = Duration.ofSeconds(60);

  @TempDir Path dir;

  @Test
  void messagesThatWaitInTheInboxWithOneReceiveTimeAreHandedOverInArrivalOrder() throws Exception {
    try (RunningServer server = RunningServer.configured(dir.resolve("server"),
        b -> b.metricsListen(new InetSocketAddress("127.0.0.1", 0)))) {
      // Alice's clock stands still: every arrival has the same receive time.
      Clock frozen = Clock.fixed(Instant.now(), ZoneOffset.UTC);
      try (FerryClient alice = TestClients.open(dir, "alice", frozen);
          FerryClient bob = TestClients.open(dir, "bob")) {
        alice.initialize(server.address());
        bob.initialize(server.address());
        bob.acceptInvitation(alice.createInvitation("bob").uri(), "alice");
        CountDownLatch release = new CountDownLatch(1);
        List<String> got = new CopyOnWriteArrayList<>();
        alice.addListener(new FerryListener() {
          @Override
          public void onMessage(ReceivedMessage m) {
            try {
              // The app is busy with the first message while the others arrive.
              release.await(BOUND.toSeconds(), TimeUnit.SECONDS);
            } catch (InterruptedException e) {
              Thread.currentThread().interrupt();
            }
            got.add(m.text());
          }
        });
        alice.start();
        List<String> sent = new ArrayList<>();
        for (int i = 0; i < 30; i++) {
          bob.send("alice", "m" + i);
          sent.add("m" + i);
        }
        // Alice's client has all of them once the server has nothing left for her (it acks
        // each one only after writing it to her inbox).
        await().atMost(BOUND).until(() -> queued(server) == 0);
        release.countDown();
        await().atMost(BOUND).until(() -> got.size() >= sent.size());
        assertEquals(sent, got);
      }
    }
  }

  private static long queued(RunningServer server) throws Exception {
    return Math.round(PrometheusText.sum(server.metricsAddress().orElseThrow(), "ferry_queue_envelopes"));
  }
}
