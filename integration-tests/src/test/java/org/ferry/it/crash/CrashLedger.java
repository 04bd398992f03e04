package org.ferry.it.crash;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Callable;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Supplier;
import org.ferry.it.load.LoadClient;
import org.ferry.it.load.Receiver;
import org.ferry.proto.ServerAddress;

/**
 * The crash harness's account of every envelope: acknowledged to its sender, delivered (and in
 * which phase), and its delivery's ack confirmed by the server. It tells the three failures
 * apart:
 * <ul>
 *   <li><b>lost</b>: acknowledged, never delivered, not even to fresh receivers after the
 *       harness's final restart;
 *   <li><b>stranded</b>: acknowledged, but delivered only in that final phase, although the
 *       receivers that followed the server through its crashes were connected and waited for it;
 *   <li><b>duplicate beyond at-least-once</b>: delivered again after the server had confirmed
 *       the ack of an earlier delivery of it.
 * </ul>
 * Deliveries again before any confirmation are <b>redelivered</b>: at-least-once allows them
 * (an ack in flight when the server was killed, or not yet applied), and they are only counted.
 * An envelope delivered under two different delivery ids was <b>stored twice</b> (a failure:
 * a forwarded item's retry must be answered without storing it again).
 */
public final class CrashLedger {
  /** When a delivery happened. */
  public enum Phase {
    /** Under load and through crashes, or waiting for the ledger afterwards: live receivers. */
    LIVE,
    /** After the harness restarted the server and connected fresh receivers. */
    FINAL
  }

  private static final HexFormat HEX = HexFormat.of();

  private final Set<String> acked = ConcurrentHashMap.newKeySet();
  /** The phase of deliveries that the ledger's own {@link #receivers} record. */
  private volatile Phase phase = Phase.LIVE;
  /** Envelope -> the phase of its first delivery. */
  private final Map<String, Phase> firstDelivery = new ConcurrentHashMap<>();
  /** "mailbox:deliveryId" -> envelope, to resolve the server's confirmations. */
  private final Map<String, String> deliveryToEnvelope = new ConcurrentHashMap<>();
  private final Set<String> confirmed = ConcurrentHashMap.newKeySet();
  private final AtomicLong redelivered = new AtomicLong();
  private final AtomicLong duplicates = new AtomicLong();
  /** Envelope -> the first "mailbox:deliveryId" it came under. */
  private final Map<String, String> firstCopy = new ConcurrentHashMap<>();
  private final Set<String> storedTwice = ConcurrentHashMap.newKeySet();

  /** The outcome of a run. */
  public record Result(int cycles, long acked, long delivered, long lost, long stranded, long duplicates,
      long redelivered, long storedTwice) {
    public boolean passed() {
      return lost == 0 && stranded == 0 && duplicates == 0 && storedTwice == 0;
    }

    public String line() {
      return "crash-test: cycles=" + cycles + " acked=" + acked + " delivered=" + delivered
          + " lost=" + lost + " stranded=" + stranded + " duplicates=" + duplicates
          + " redelivered=" + redelivered + " stored-twice=" + storedTwice;
    }
  }

  public void acked(String envelope) {
    acked.add(envelope);
  }

  public void delivered(String envelope, String mailbox, long deliveryId, Phase phase) {
    String copy = mailbox + ":" + deliveryId;
    deliveryToEnvelope.put(copy, envelope);
    String first = firstCopy.putIfAbsent(envelope, copy);
    if (first != null && !first.equals(copy)) {
      storedTwice.add(envelope);
    }
    if (firstDelivery.putIfAbsent(envelope, phase) != null) {
      if (confirmed.contains(envelope)) {
        duplicates.incrementAndGet();
      } else {
        redelivered.incrementAndGet();
      }
    }
  }

  public void confirmed(String mailbox, long deliveryId) {
    String envelope = deliveryToEnvelope.get(mailbox + ":" + deliveryId);
    if (envelope == null) {
      throw new IllegalStateException("the server confirmed an ack for a delivery never received");
    }
    confirmed.add(envelope);
  }

  /** How many envelopes were acknowledged so far. */
  public long ackedCount() {
    return acked.size();
  }

  /**
   * Receivers for {@code mailboxes} on the server {@code at} names (asked again at each
   * reconnection), split round-robin among {@code n}; they record every delivery in this ledger,
   * in its current phase, and the server's confirmations of their acks.
   */
  public List<Receiver> receivers(Supplier<ServerAddress> at, List<LoadClient.Mailbox> mailboxes, int n) {
    List<Receiver> receivers = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      List<LoadClient.Mailbox> mine = new ArrayList<>();
      for (int m = i; m < mailboxes.size(); m += n) {
        mine.add(mailboxes.get(m));
      }
      receivers.add(new Receiver(at, mine,
          d -> delivered(HEX.formatHex(d.getEnvelope().getId().toByteArray()),
              HEX.formatHex(d.getMailboxId().toByteArray()), d.getDeliveryId(), phase),
          (mailbox, ids) -> ids.forEach(id -> confirmed(HEX.formatHex(mailbox.toByteArray()), id))));
    }
    return receivers;
  }

  /**
   * Waits until {@code n} more envelopes than now were acknowledged (the server is up and under
   * load), or a minute has passed.
   */
  public void awaitMoreAcks(int n) throws InterruptedException {
    long before = ackedCount();
    awaitUntil(() -> ackedCount() - before >= n, Duration.ofMinutes(1), 10);
  }

  /**
   * Waits until every acknowledged envelope was delivered, or {@code bound} has passed (the
   * result tells which).
   */
  public void awaitDelivered(Duration bound) throws InterruptedException {
    awaitUntil(() -> missing() == 0, bound, 100);
  }

  /**
   * The end of a run, once the senders stopped: the receivers that lived through the crashes
   * must get everything within {@code liveWait}, without help. Whatever they did not get is
   * either on disk (stranded) or gone (lost): if anything is missing, the final phase begins and
   * {@code restart} restarts the server and returns fresh receivers (from {@link #receivers}),
   * which get {@code finalWait}. All receivers are closed on return.
   */
  public void settle(List<Receiver> live, Duration liveWait, Callable<List<Receiver>> restart, Duration finalWait)
      throws Exception {
    awaitDelivered(liveWait);
    live.forEach(Receiver::close);
    if (missing() > 0) {
      phase = Phase.FINAL;
      List<Receiver> fresh = restart.call();
      awaitDelivered(finalWait);
      fresh.forEach(Receiver::close);
    }
  }

  private static void awaitUntil(java.util.function.BooleanSupplier done, Duration bound, long pollMillis)
      throws InterruptedException {
    long deadline = System.nanoTime() + bound.toNanos();
    CountDownLatch never = new CountDownLatch(1);
    while (!done.getAsBoolean() && System.nanoTime() < deadline) {
      never.await(pollMillis, TimeUnit.MILLISECONDS);
    }
  }

  /** Acknowledged envelopes not delivered in any phase yet. */
  public long missing() {
    return acked.stream().filter(e -> !firstDelivery.containsKey(e)).count();
  }

  public Result result(int cycles) {
    long delivered = acked.stream().filter(firstDelivery::containsKey).count();
    long stranded = acked.stream().filter(e -> firstDelivery.get(e) == Phase.FINAL).count();
    return new Result(cycles, acked.size(), delivered, acked.size() - delivered, stranded,
        duplicates.get(), redelivered.get(), storedTwice.size());
  }
}
