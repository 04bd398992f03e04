package org.ferry.it;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.ferry.it.censor.Censor;
import org.ferry.proto.ServerAddress;
import org.ferry.sdk.Connectivity;
import org.ferry.sdk.FerryClient;
import org.ferry.sdk.FerryException;
import org.ferry.sdk.FerryListener;
import org.ferry.sdk.ReceivedMessage;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The always-on SDK against a real server, every connection through a {@link Censor} that can
 * cut the line: background receive, async sends through the outbox, and events.
 */
class AlwaysOnTest {
  private static final Duration BOUND = Duration.ofSeconds(90);

  @TempDir Path dir;
  private final Closer closer = new Closer();
  private RunningServer server;
  private Censor line;
  private final Map<String, byte[]> keys = new ConcurrentHashMap<>();

  @AfterEach
  void closeAll() throws Exception {
    closer.close();
  }

  private void startServer() throws Exception {
    server = closer.add(new RunningServer(dir.resolve("server")));
    line = closer.add(Censor.start(new InetSocketAddress("127.0.0.1", server.address().port())));
  }

  /** The server as the users know it: behind the line that can be cut. */
  private ServerAddress serverBehindLine() {
    return new ServerAddress("127.0.0.1", line.port(), server.address().fingerprint());
  }

  /** Opens (or reopens, with the same storage key) a user's client. */
  private FerryClient open(String name) {
    byte[] key = keys.computeIfAbsent(name, n -> {
      byte[] k = new byte[32];
      new SecureRandom().nextBytes(k);
      return k;
    });
    return FerryClient.builder().dataDirectory(dir.resolve(name)).storageKey(key)
        .callTimeout(Duration.ofSeconds(5)).build();
  }

  private FerryClient user(String name) {
    FerryClient c = closer.add(open(name));
    c.initialize(serverBehindLine());
    return c;
  }

  /** A server, and Alice and Bob on it, Bob having accepted Alice's invitation. */
  private FerryClient[] connectedPair() throws Exception {
    startServer();
    FerryClient alice = user("alice");
    FerryClient bob = user("bob");
    bob.acceptInvitation(alice.createInvitation("bob").uri(), "alice");
    return new FerryClient[] {alice, bob};
  }

  /** Records every event, in order. */
  private static final class Recorder implements FerryListener {
    final List<ReceivedMessage> messages = new CopyOnWriteArrayList<>();
    final List<String> established = new CopyOnWriteArrayList<>();
    final List<String> accepted = new CopyOnWriteArrayList<>();
    final List<FerryException> failed = new CopyOnWriteArrayList<>();
    final List<String> failedIds = new CopyOnWriteArrayList<>();
    final List<Connectivity> connectivity = new CopyOnWriteArrayList<>();
    final List<String> threads = new CopyOnWriteArrayList<>();

    @Override
    public void onMessage(ReceivedMessage message) {
      threads.add(Thread.currentThread().getName());
      messages.add(message);
    }

    @Override
    public void onContactEstablished(String label) {
      established.add(label);
    }

    @Override
    public void onSendAccepted(String contactLabel, String messageId) {
      accepted.add(contactLabel + ":" + messageId);
    }

    @Override
    public void onSendFailed(String contactLabel, String messageId, FerryException failure) {
      failedIds.add(contactLabel + ":" + messageId);
      failed.add(failure);
    }

    @Override
    public void onConnectivityChanged(Connectivity state) {
      connectivity.add(state);
    }

    List<String> texts() {
      return messages.stream().map(ReceivedMessage::text).toList();
    }
  }

  @Test
  void threadsSendingWhileTheLoopReceivesOverALineCutAndRestoredDeliverEverythingExactlyOnce() throws Exception {
    FerryClient[] pair = connectedPair();
    FerryClient alice = pair[0];
    FerryClient bob = pair[1];
    Recorder atBob = new Recorder();
    Recorder atAlice = new Recorder();
    bob.addListener(atBob);
    alice.addListener(atAlice);
    bob.start();
    alice.start();
    await().atMost(BOUND).until(() -> alice.connectivity().connected() && bob.connectivity().connected());

    int threads = 4;
    int perThread = 40;
    ExecutorService senders = Executors.newFixedThreadPool(threads);
    closer.add(senders::shutdownNow);
    List<Future<List<CompletableFuture<String>>>> sent = new ArrayList<>();
    for (int t = 0; t < threads; t++) {
      int thread = t;
      sent.add(senders.submit(() -> {
        List<CompletableFuture<String>> futures = new ArrayList<>();
        for (int i = 0; i < perThread; i++) {
          futures.add(alice.sendAsync("bob", "t" + thread + "-" + i));
          if (i == perThread / 2 && thread == 0) {
            // Mid-run the line goes down: the streams die, new connections are refused.
            line.block(Censor.Rule.BLOCK_PORT).cutAll();
          }
        }
        return futures;
      }));
    }
    // Bob answers on the same client meanwhile, with the blocking form, from his own thread.
    List<String> bobSent = Collections.synchronizedList(new ArrayList<>());
    Future<?> replies = senders.submit(() -> {
      for (int i = 0; i < 10; i++) {
        try {
          bob.send("alice", "reply-" + i);
          bobSent.add("reply-" + i);
        } catch (FerryException e) {
          // The line is down: this one was not sent.
        }
      }
    });
    List<CompletableFuture<String>> all = new ArrayList<>();
    for (Future<List<CompletableFuture<String>>> f : sent) {
      all.addAll(f.get(60, TimeUnit.SECONDS));
    }
    replies.get(120, TimeUnit.SECONDS);
    // The outage is seen before the line comes back.
    await().atMost(BOUND).until(() -> atBob.connectivity.stream().anyMatch(c -> !c.connected()));
    line.block();

    CompletableFuture.allOf(all.toArray(CompletableFuture[]::new)).get(BOUND.toSeconds(), TimeUnit.SECONDS);
    await().atMost(BOUND).until(() -> atBob.messages.size() >= threads * perThread);
    await().atMost(BOUND).until(() -> atAlice.messages.size() >= bobSent.size());

    // Exactly once: every text once, nothing else.
    List<String> texts = atBob.texts();
    assertEquals(threads * perThread, texts.size(), "messages handed to Bob's app");
    assertEquals(threads * perThread, texts.stream().distinct().count(), "a message was handed over twice");
    // In order per sender thread (each thread's sends were queued in its order).
    for (int t = 0; t < threads; t++) {
      String prefix = "t" + t + "-";
      List<String> mine = texts.stream().filter(x -> x.startsWith(prefix)).toList();
      for (int i = 0; i < perThread; i++) {
        assertEquals(prefix + i, mine.get(i), "order of thread " + t + "'s messages");
      }
    }
    // Every future completed with the id Bob saw, and Alice's app heard of each.
    List<String> ids = new ArrayList<>();
    for (CompletableFuture<String> f : all) {
      ids.add(f.get());
    }
    assertEquals(atBob.messages.stream().map(ReceivedMessage::messageId).sorted().toList(),
        ids.stream().sorted().toList());
    await().atMost(BOUND).until(() -> atAlice.accepted.size() == ids.size());
    // Bob's blocking replies that succeeded arrived once each; none arrived that failed for sure.
    List<String> replyTexts = atAlice.texts();
    assertEquals(replyTexts.size(), replyTexts.stream().distinct().count());
    assertTrue(replyTexts.containsAll(bobSent), "acknowledged replies missing: " + replyTexts + " vs " + bobSent);
    // The cut was seen and recovered from.
    assertTrue(atBob.connectivity.stream().anyMatch(c -> !c.connected() && c.nextRetry().isPresent()),
        "Bob's app heard of the outage: " + atBob.connectivity);
    assertTrue(bob.connectivity().connected());
    assertTrue(atBob.threads.stream().allMatch(n -> n.equals("ferry-events")), "listener thread: " + atBob.threads);
    assertEquals(0, alice.pendingSends());
  }

  @Test
  void aSendQueuedOfflineSurvivesARestartAndIsDeliveredOnce() throws Exception {
    startServer();
    FerryClient alice = open("alice");
    alice.initialize(serverBehindLine());
    FerryClient bob = user("bob");
    bob.acceptInvitation(alice.createInvitation("bob").uri(), "alice");
    alice.receive(Duration.ofMillis(500), m -> { });

    line.block(Censor.Rule.BLOCK_PORT);
    CompletableFuture<String> queued = alice.sendAsync("bob", "sent while offline");
    assertEquals(1, alice.pendingSends());
    alice.close();
    ExecutionException closed = assertThrows(ExecutionException.class, () -> queued.get(10, TimeUnit.SECONDS));
    assertEquals(FerryException.Reason.CLOSED, ((FerryException) closed.getCause()).reason());

    line.block();
    FerryClient again = closer.add(open("alice"));
    assertEquals(1, again.pendingSends());
    Recorder atAlice = new Recorder();
    again.addListener(atAlice);
    again.start();
    await().atMost(BOUND).until(() -> again.pendingSends() == 0);
    await().atMost(BOUND).until(() -> atAlice.accepted.size() == 1);

    List<String> got = new ArrayList<>();
    bob.receive(Duration.ofSeconds(1), m -> got.add(m.text()));
    assertEquals(List.of("sent while offline"), got);
  }

  @Test
  void eachEventKindReachesTheListenerWithoutAReceiveCall() throws Exception {
    startServer();
    FerryClient alice = user("alice");
    FerryClient bob = user("bob");
    Recorder atAlice = new Recorder();
    alice.addListener(atAlice);
    alice.start();

    // Connectivity: online, over the server's own address, before there is any contact.
    await().atMost(BOUND).until(() -> atAlice.connectivity.stream().anyMatch(Connectivity::connected));
    String uri = alice.createInvitation("bob").uri();
    await().atMost(BOUND).until(() -> atAlice.connectivity.stream().anyMatch(Connectivity::connected));
    Connectivity online = atAlice.connectivity.stream().filter(Connectivity::connected).findFirst().orElseThrow();
    assertTrue(online.carrier().orElseThrow().startsWith("direct"), online.toString());

    // Contact established: the acceptance arrives by itself.
    bob.acceptInvitation(uri, "alice");
    await().atMost(BOUND).until(() -> atAlice.established.equals(List.of("bob")));

    // Message received.
    bob.send("alice", "hello");
    await().atMost(BOUND).until(() -> atAlice.texts().equals(List.of("hello")));

    // Send accepted, with the future's id.
    String id = alice.sendAsync("bob", "hi").get(BOUND.toSeconds(), TimeUnit.SECONDS);
    await().atMost(BOUND).until(() -> atAlice.accepted.contains("bob:" + id));

    // Send failed: Bob removed Alice, so his mailbox for her is gone.
    bob.removeContact("alice");
    CompletableFuture<String> doomed = alice.sendAsync("bob", "into the void");
    ExecutionException e = assertThrows(ExecutionException.class, () -> doomed.get(BOUND.toSeconds(), TimeUnit.SECONDS));
    assertEquals(FerryException.Reason.REJECTED, ((FerryException) e.getCause()).reason());
    await().atMost(BOUND).until(() -> atAlice.failed.size() == 1);
    assertEquals(0, alice.pendingSends());

    // Connectivity: offline with a retry time when the line goes down, online when it is back.
    int before = atAlice.connectivity.size();
    line.block(Censor.Rule.BLOCK_PORT).cutAll();
    await().atMost(BOUND).until(() -> atAlice.connectivity.stream().skip(before)
        .anyMatch(c -> !c.connected() && c.nextRetry().isPresent() && c.lastError().isPresent()));
    line.block();
    await().atMost(BOUND).until(() -> atAlice.connectivity.get(atAlice.connectivity.size() - 1).connected());
  }

  @Test
  void aBlockingReceiveTakesWhatTheLoopKeptAndStopEndsTheLoop() throws Exception {
    FerryClient[] pair = connectedPair();
    FerryClient alice = pair[0];
    FerryClient bob = pair[1];
    alice.start();
    assertTrue(alice.isRunning());
    bob.send("alice", "one");
    bob.send("alice", "two");
    List<String> got = new ArrayList<>();
    await().atMost(BOUND).until(() -> {
      alice.receive(Duration.ofMillis(200), m -> got.add(m.text()));
      return got.size() >= 2;
    });
    assertEquals(List.of("one", "two"), got);

    alice.stop();
    assertFalse(alice.isRunning());
    bob.send("alice", "three");
    // Stopped: the blocking form receives by itself again.
    List<String> later = new ArrayList<>();
    alice.receive(Duration.ofSeconds(1), m -> later.add(m.text()));
    assertEquals(List.of("three"), later);
  }

  @Test
  void aListenerThatThrowsGetsTheMessageAgainAndNothingIsLost() throws Exception {
    FerryClient[] pair = connectedPair();
    FerryClient alice = pair[0];
    FerryClient bob = pair[1];
    List<String> got = new CopyOnWriteArrayList<>();
    java.util.concurrent.atomic.AtomicInteger calls = new java.util.concurrent.atomic.AtomicInteger();
    alice.addListener(new FerryListener() {
      @Override
      public void onMessage(ReceivedMessage message) {
        if (calls.incrementAndGet() == 1) {
          throw new IllegalStateException("the app's database is busy");
        }
        got.add(message.text());
      }
    });
    alice.start();
    bob.send("alice", "first");
    // Handed over again by itself, with nothing else arriving.
    await().atMost(BOUND).until(() -> got.equals(List.of("first")));
    assertTrue(calls.get() >= 2);
    bob.send("alice", "second");
    await().atMost(BOUND).until(() -> got.size() >= 2);
    assertEquals(List.of("first", "second"), got);
  }

  @Test
  void aHundredStartStopCyclesLeaveNoThreadsBehindAndAListenerMayStopOrCloseTheClient() throws Exception {
    FerryClient[] pair = connectedPair();
    FerryClient alice = pair[0];
    FerryClient bob = pair[1];
    java.util.function.LongSupplier ferryThreads = () -> Thread.getAllStackTraces().keySet().stream()
        .filter(t -> t.getName().equals("ferry-receive")).count();
    long before = ferryThreads.getAsLong();
    for (int i = 0; i < 100; i++) {
      alice.start();
      alice.start(); // Idempotent.
      alice.stop();
      alice.stop();
    }
    assertEquals(before, ferryThreads.getAsLong(), "receive loops left running");
    assertFalse(alice.isRunning());

    // A listener that stops and then closes the client must not hang it.
    java.util.concurrent.CountDownLatch closedByListener = new java.util.concurrent.CountDownLatch(1);
    alice.addListener(new FerryListener() {
      @Override
      public void onMessage(ReceivedMessage message) {
        alice.stop();
        alice.close();
        closedByListener.countDown();
      }
    });
    alice.start();
    bob.send("alice", "stop now");
    assertTrue(closedByListener.await(BOUND.toSeconds(), TimeUnit.SECONDS), "the listener's stop and close returned");
    FerryException closed = assertThrows(FerryException.class, () -> alice.sendAsync("bob", "after close"));
    assertEquals(FerryException.Reason.CLOSED, closed.reason());

    // The message it was handling counts as handled: it does not come again with the next run.
    await().atMost(BOUND).until(() -> {
      try {
        open("alice").close();
        return true;
      } catch (FerryException stillClosing) {
        return false;
      }
    });
    FerryClient again = closer.add(open("alice"));
    List<String> later = new ArrayList<>();
    again.receive(Duration.ofSeconds(1), m -> later.add(m.text()));
    assertEquals(List.of(), later);

    // Likewise from a listener on the app's own executor.
    ExecutorService appThread = Executors.newSingleThreadExecutor();
    closer.add(appThread::shutdownNow);
    java.util.concurrent.CountDownLatch closedOnAppThread = new java.util.concurrent.CountDownLatch(1);
    again.addListener(new FerryListener() {
      @Override
      public void onMessage(ReceivedMessage message) {
        again.close();
        closedOnAppThread.countDown();
      }
    }, appThread);
    again.start();
    bob.send("alice", "close on the app's thread");
    assertTrue(closedOnAppThread.await(BOUND.toSeconds(), TimeUnit.SECONDS));
  }

  @Test
  void textThatIsNotValidUnicodeIsRefusedNotGarbled() throws Exception {
    FerryClient[] pair = connectedPair();
    for (String bad : List.of("\ud800", "a\udc00b", "end\ud83d")) {
      FerryException e = assertThrows(FerryException.class, () -> pair[1].send("alice", bad));
      assertEquals(FerryException.Reason.INVALID_TEXT, e.reason());
      FerryException async = assertThrows(FerryException.class, () -> pair[1].sendAsync("alice", bad));
      assertEquals(FerryException.Reason.INVALID_TEXT, async.reason());
    }
    pair[1].send("alice", "fine \ud83d\ude00");
    List<String> got = new ArrayList<>();
    pair[0].receive(Duration.ofSeconds(1), m -> got.add(m.text()));
    assertEquals(List.of("fine \ud83d\ude00"), got);
  }

  @Test
  void whenTheDirectLineIsCutTheLoopComesBackOverABridgeLineAndSaysWhich() throws Exception {
    startServer();
    org.ferry.relay.Relay relay = closer.add(org.ferry.relay.Relay.builder()
        .dataDirectory(dir.resolve("relay"))
        .listen(new InetSocketAddress("127.0.0.1", 0))
        .upstream(new InetSocketAddress("127.0.0.1", server.address().port()))
        .carriers(java.util.EnumSet.of(org.ferry.relay.Carrier.WS))
        .start());
    String ws = relay.bridgeLines().stream().filter(l -> l.kind() == org.ferry.proto.BridgeLine.Kind.WS)
        .findFirst().orElseThrow().toString();
    FerryClient alice = closer.add(open("alice"));
    alice.initialize(serverBehindLine(), "", List.of(ws));
    FerryClient bob = user("bob");
    bob.acceptInvitation(alice.createInvitation("bob").uri(), "alice");
    Recorder atAlice = new Recorder();
    alice.addListener(atAlice);
    alice.start();
    await().atMost(BOUND).until(() -> alice.connectivity().connected()
        && alice.connectivity().carrier().orElseThrow().startsWith("direct"));

    line.block(Censor.Rule.BLOCK_PORT).cutAll();
    await().atMost(BOUND).until(() -> alice.connectivity().connected()
        && alice.connectivity().carrier().orElseThrow().startsWith("ws"));
    assertTrue(atAlice.connectivity.stream().anyMatch(c -> !c.connected()), atAlice.connectivity.toString());

    line.block(); // Bob's way in again.
    bob.send("alice", "over the bridge");
    await().atMost(BOUND).until(() -> atAlice.texts().equals(List.of("over the bridge")));
  }
}
