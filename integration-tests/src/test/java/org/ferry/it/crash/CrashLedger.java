package org.ferry.it.crash;

import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;

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

  private final Set<String> acked = ConcurrentHashMap.newKeySet();
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

  /**
   * Waits until every acknowledged envelope was delivered, or {@code bound} has passed (the
   * result tells which).
   */
  public void awaitDelivered(java.time.Duration bound) throws InterruptedException {
    long deadline = System.nanoTime() + bound.toNanos();
    java.util.concurrent.CountDownLatch never = new java.util.concurrent.CountDownLatch(1);
    while (missing() > 0 && System.nanoTime() < deadline) {
      never.await(100, java.util.concurrent.TimeUnit.MILLISECONDS);
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
