package org.ferry.it.load;

import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.ferry.sdk.FerryClient;
import org.ferry.sdk.FerryListener;
import org.ferry.sdk.ReceivedMessage;

/**
 * The always-on SDK's throughput against a real server process (issue 12), each figure next to
 * a baseline from the same run: N messages sent with the blocking {@code send} one after
 * another (the baseline), the same with {@code sendAsync} through the outbox, and the rate at
 * which the receiver's background loop hands them to its listener.
 *
 * <pre>integration-tests/bench.sh sdk [N]</pre>
 */
public final class SdkBench {
  private SdkBench() {}

  public static void main(String[] args) throws Exception {
    Path jar = Path.of(args[0]);
    Path work = Path.of(args[1]);
    int n = Integer.parseInt(args[2]);
    try (ServerProcess server = ServerProcess.start(
            ServerProcess.Command.fromJar(jar, work.resolve("server"), List.of("-Xmx1g"), List.of()), 0);
        FerryClient alice = open(work, "alice");
        FerryClient bob = open(work, "bob")) {
      alice.initialize(server.address());
      bob.initialize(server.address());
      bob.acceptInvitation(alice.createInvitation("bob").uri(), "alice");
      alice.receive(Duration.ofMillis(500), m -> { });
      // Warm-up: JIT and connections.
      for (int i = 0; i < 200; i++) {
        bob.send("alice", "warm-up " + i);
      }
      alice.receive(Duration.ofMillis(500), m -> { });

      long t0 = System.nanoTime();
      for (int i = 0; i < n; i++) {
        bob.send("alice", "blocking " + i);
      }
      double blocking = rate(n, System.nanoTime() - t0);
      alice.receive(Duration.ofMillis(500), m -> { });

      CountDownLatch got = new CountDownLatch(n);
      AtomicInteger wrong = new AtomicInteger();
      alice.addListener(new FerryListener() {
        @Override
        public void onMessage(ReceivedMessage message) {
          if (!message.text().startsWith("async ")) {
            wrong.incrementAndGet();
          }
          got.countDown();
        }
      });
      alice.start();
      long t1 = System.nanoTime();
      List<CompletableFuture<String>> sent = new ArrayList<>(n);
      for (int i = 0; i < n; i++) {
        sent.add(bob.sendAsync("alice", "async " + i));
      }
      long queued = System.nanoTime() - t1;
      CompletableFuture.allOf(sent.toArray(CompletableFuture[]::new)).get(10, TimeUnit.MINUTES);
      double async = rate(n, System.nanoTime() - t1);
      if (!got.await(10, TimeUnit.MINUTES) || wrong.get() != 0) {
        throw new IllegalStateException("the listener got " + (n - got.getCount()) + " of " + n);
      }
      double handed = rate(n, System.nanoTime() - t1);
      System.out.printf(Locale.ROOT, "sdk: %d messages of ~10 bytes, one sender, fsync on%n", n);
      System.out.printf(Locale.ROOT, "  blocking send, one after another (baseline): %8.0f msg/s%n", blocking);
      System.out.printf(Locale.ROOT, "  sendAsync, queued in the outbox:             %8.0f msg/s%n", rate(n, queued));
      System.out.printf(Locale.ROOT, "  sendAsync, until the server held all:        %8.0f msg/s  (%.2fx baseline)%n",
          async, async / blocking);
      System.out.printf(Locale.ROOT, "  ... and handed to the receiver's listener:   %8.0f msg/s  (%.2fx baseline)%n",
          handed, handed / blocking);
    }
  }

  private static double rate(int n, long nanos) {
    return n / (nanos / 1e9);
  }

  private static FerryClient open(Path work, String name) throws Exception {
    byte[] key = new byte[32];
    new SecureRandom().nextBytes(key);
    Files.createDirectories(work);
    return FerryClient.builder().dataDirectory(work.resolve(name)).storageKey(key).build();
  }
}
