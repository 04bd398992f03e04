package org.ferry.server.internal.mailbox;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.io.IOException;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Random;
import org.ferry.proto.ErrorReasons;
import org.ferry.proto.OwnerKeys;
import org.ferry.server.internal.store.MailboxStore;
import org.ferry.server.internal.store.MailboxUsage;
import org.ferry.server.internal.time.ServerClock;
import org.ferry.server.testing.MutableClock;
import org.junit.jupiter.api.Test;
import org.ferry.server.internal.util.Bytes;
import org.junit.jupiter.api.io.TempDir;

/**
 * Seeded random sequences of send / receive / ack / expire / restart against a plain in-memory
 * model of the queue, with quotas small enough that sends hit them. Every result and, after
 * every step, the whole stored state must match the model.
 *
 * <p>{@code -Dferry.model.sequences=N} runs more; {@code -Dferry.model.seed=S} replays one.
 */
class QueueModelTest {
  private static final int SEQUENCES = Integer.getInteger("ferry.model.sequences", 2000);
  private static final int STEPS = 60;
  private static final int MAILBOXES = 3;
  private static final Duration DEFAULT_TTL = Duration.ofHours(6);
  private static final ServerLimits LIMITS =
      new ServerLimits(6, 40 * 1024, 100 * 1024, 1000, 1000, Optional.empty());
  private static final int[] SIZES = {1024, 1024, 1024, 4096, 4096, 16384, 65536};

  /** What the model says one envelope is. */
  private record Entry(String id, int size, Instant expiresAt) {}

  /** The model: per mailbox, its envelopes in send order, expired ones included until removed. */
  private static final class Model {
    final Map<Integer, List<Entry>> queues = new LinkedHashMap<>();

    long count(int box) {
      return queues.get(box).size();
    }

    long bytes(int box) {
      return queues.get(box).stream().mapToLong(Entry::size).sum();
    }

    long total() {
      return queues.values().stream().flatMap(List::stream).mapToLong(Entry::size).sum();
    }

    /** Null if accepted, else the refusal reason. */
    String send(int box, Entry e) {
      if (count(box) + 1 > LIMITS.mailboxEnvelopes() || bytes(box) + e.size() > LIMITS.mailboxBytes()) {
        return ErrorReasons.MAILBOX_FULL;
      }
      if (total() + e.size() > LIMITS.queuedBytes()) {
        return ErrorReasons.SERVER_FULL;
      }
      queues.get(box).add(e);
      return null;
    }

    /** Reads the first {@code limit}, drops the expired among them, returns the rest. */
    List<Entry> receive(int box, int limit, Instant now) {
      List<Entry> q = queues.get(box);
      List<Entry> read = new ArrayList<>(q.subList(0, Math.min(limit, q.size())));
      read.stream().filter(e -> !now.isBefore(e.expiresAt())).forEach(q::remove);
      return read.stream().filter(e -> now.isBefore(e.expiresAt())).toList();
    }

    int sweep(Instant now) {
      int removed = 0;
      for (List<Entry> q : queues.values()) {
        int before = q.size();
        q.removeIf(e -> !now.isBefore(e.expiresAt()));
        removed += before - q.size();
      }
      return removed;
    }
  }

  /** The real thing: manager over a RocksDB store, with what a test needs to restart it. */
  private static final class Real implements AutoCloseable {
    final Path dir;
    final MutableClock clock = new MutableClock(Instant.parse("2026-01-01T00:00:00Z"));
    final SecureRandom random = new SecureRandom();
    MailboxStore store;
    MailboxManager manager;
    final List<MailboxId> ids = new ArrayList<>();
    final List<byte[]> capabilities = new ArrayList<>();
    /** Envelope id -> (mailbox, position) of what a receive handed out. */
    final Map<String, long[]> delivered = new LinkedHashMap<>();

    Real(Path dir) throws IOException {
      this.dir = dir;
      open();
    }

    /** A fresh start for the next sequence on the same store: new mailboxes, nothing handed out. */
    void newSequence() {
      ids.clear();
      capabilities.clear();
      delivered.clear();
      for (int i = 0; i < MAILBOXES; i++) {
        byte[] cap = new byte[32];
        random.nextBytes(cap);
        capabilities.add(cap);
        ids.add(manager.create(OwnerKeys.encode(OwnerKeys.generate().getPublic()), Bytes.sha256(cap), ""));
      }
    }

    void open() throws IOException {
      store = MailboxStore.open(dir);
      manager = new MailboxManager(store, new ServerClock(clock, clock::nanoTime, Optional.empty()), random, DEFAULT_TTL, LIMITS);
    }

    void restart() throws IOException {
      store.close();
      open();
    }

    @Override
    public void close() {
      store.close();
    }
  }

  @TempDir Path scratch;

  @Test
  void randomSequencesOfQueueOperationsNeverDivergeFromTheModel() throws Exception {
    Long only = Long.getLong("ferry.model.seed");
    List<Long> seeds = new ArrayList<>();
    if (only != null) {
      seeds.add(only);
    } else {
      for (long s = 0; s < SEQUENCES; s++) {
        seeds.add(s);
      }
    }
    int refusals = 0;
    int restarts = 0;
    int swept = 0;
    // One store for all sequences (opening one costs more than a whole sequence); each
    // sequence uses new mailboxes and ends by letting everything expire, so the global budget
    // starts from zero every time.
    try (Real real = new Real(scratch)) {
      for (long seed : seeds) {
        int[] counts = runSequence(seed, real);
        refusals += counts[0];
        restarts += counts[1];
        swept += counts[2];
        real.clock.advance(DEFAULT_TTL);
        real.manager.sweepExpired();
        assertEquals(0, real.store.queuedBytes(), "seed " + seed + " left bytes behind");
      }
    }
    // The sequences must actually reach the interesting paths, or they prove little.
    int n = seeds.size();
    if (n >= 100 && (refusals < n || restarts < n / 4 || swept < n)) {
      fail("sequences too tame: " + refusals + " refusals, " + restarts + " restarts, " + swept + " swept");
    }
  }

  /** Returns {quota refusals, restarts, envelopes swept}. */
  private static int[] runSequence(long seed, Real real) throws IOException {
    Random rnd = new Random(seed);
    Model model = new Model();
    for (int i = 0; i < MAILBOXES; i++) {
      model.queues.put(i, new ArrayList<>());
    }
    int[] counts = new int[3];
    List<String> log = new ArrayList<>();
    real.newSequence();
    {
      for (int step = 0; step < STEPS; step++) {
        int box = rnd.nextInt(MAILBOXES);
        MailboxId id = real.ids.get(box);
        int op = rnd.nextInt(100);
        String what;
        if (op < 45) {
          byte[] envelopeId = new byte[16];
          rnd.nextBytes(envelopeId);
          int size = SIZES[rnd.nextInt(SIZES.length)];
          int ttlSeconds = rnd.nextInt(4) == 0 ? 0 : 1 + rnd.nextInt(4 * 3600);
          Duration ttl = ttlSeconds == 0 ? DEFAULT_TTL : Duration.ofSeconds(ttlSeconds);
          Entry e = new Entry(hex(envelopeId), size, real.clock.instant().plus(ttl));
          String expected = model.send(box, e);
          String actual = null;
          try {
            real.manager.send(id, real.capabilities.get(box), envelopeId, new byte[size],
                Duration.ofSeconds(ttlSeconds));
          } catch (StatusRuntimeException refused) {
            check(seed, step, log, Status.Code.RESOURCE_EXHAUSTED, refused.getStatus().getCode());
            actual = ErrorReasons.of(refused).orElse("?");
            counts[0]++;
          }
          what = "send box=" + box + " size=" + size + " ttl=" + ttlSeconds + " -> " + actual;
          log.add(what);
          check(seed, step, log, expected, actual);
        } else if (op < 65) {
          int limit = 1 + rnd.nextInt(8);
          List<String> expected = model.receive(box, limit, real.clock.instant()).stream().map(Entry::id).toList();
          List<String> actual = new ArrayList<>();
          for (QueuedEnvelope e : real.manager.pending(id, 0, limit).envelopes()) {
            actual.add(hex(e.envelopeId()));
            real.delivered.put(hex(e.envelopeId()), new long[] {box, e.seq()});
          }
          log.add("receive box=" + box + " limit=" + limit + " -> " + actual.size());
          check(seed, step, log, expected, actual);
        } else if (op < 85) {
          if (real.delivered.isEmpty()) {
            continue;
          }
          List<String> handed = new ArrayList<>(real.delivered.keySet());
          String envelope = handed.get(rnd.nextInt(handed.size()));
          long[] where = real.delivered.get(envelope);
          // Acks are idempotent: a second ack of the same delivery must change nothing.
          if (rnd.nextInt(3) != 0) {
            real.delivered.remove(envelope);
          }
          real.manager.acknowledge(real.ids.get((int) where[0]), List.of(where[1]));
          model.queues.get((int) where[0]).removeIf(e -> e.id().equals(envelope));
          log.add("ack " + envelope.substring(0, 6));
        } else if (op < 99) {
          real.clock.advance(Duration.ofSeconds(rnd.nextInt(3 * 3600)));
          int expected = model.sweep(real.clock.instant());
          int actual = real.manager.sweepExpired();
          counts[2] += actual;
          log.add("advance+sweep -> " + actual);
          check(seed, step, log, expected, actual);
        } else {
          // Rarer than the rest: reopening a store costs as much as a few dozen steps.
          real.restart();
          counts[1]++;
          log.add("restart");
        }
        compareWholeState(seed, step, log, model, real);
      }
    }
    return counts;
  }

  private static void compareWholeState(long seed, int step, List<String> log, Model model, Real real) {
    long total = 0;
    for (int box = 0; box < MAILBOXES; box++) {
      MailboxId id = real.ids.get(box);
      List<String> stored = real.store.read(id, 0, Integer.MAX_VALUE).envelopes().stream()
          .map(e -> hex(e.envelopeId())).toList();
      check(seed, step, log, model.queues.get(box).stream().map(Entry::id).toList(), stored);
      check(seed, step, log, new MailboxUsage(model.count(box), model.bytes(box)), real.store.usage(id));
      total += model.bytes(box);
    }
    check(seed, step, log, total, real.store.queuedBytes());
  }

  private static void check(long seed, int step, List<String> log, Object expected, Object actual) {
    if (!java.util.Objects.equals(expected, actual)) {
      int from = Math.max(0, log.size() - 15);
      assertEquals(expected, actual, "seed " + seed + " diverged at step " + step
          + " (replay with -Dferry.model.seed=" + seed + "); last steps:\n  "
          + String.join("\n  ", log.subList(from, log.size())));
    }
  }

  private static String hex(byte[] b) {
    return HexFormat.of().formatHex(b);
  }

}
