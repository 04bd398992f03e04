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
 */
final class CrashLedger {
  /** When a delivery happened. */
  enum Phase {
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

  /** The outcome of a run. */
  record Result(int cycles, long acked, long delivered, long lost, long stranded, long duplicates,
      long redelivered) {
    boolean passed() {
      return lost == 0 && stranded == 0 && duplicates == 0;
    }

    String line() {
      return "crash-test: cycles=" + cycles + " acked=" + acked + " delivered=" + delivered
          + " lost=" + lost + " stranded=" + stranded + " duplicates=" + duplicates
          + " redelivered=" + redelivered;
    }
  }

  void acked(String envelope) {
    acked.add(envelope);
  }

  void delivered(String envelope, String mailbox, long deliveryId, Phase phase) {
    deliveryToEnvelope.put(mailbox + ":" + deliveryId, envelope);
    if (firstDelivery.putIfAbsent(envelope, phase) != null) {
      if (confirmed.contains(envelope)) {
        duplicates.incrementAndGet();
      } else {
        redelivered.incrementAndGet();
      }
    }
  }

  void confirmed(String mailbox, long deliveryId) {
    String envelope = deliveryToEnvelope.get(mailbox + ":" + deliveryId);
    if (envelope == null) {
      throw new IllegalStateException("the server confirmed an ack for a delivery never received");
    }
    confirmed.add(envelope);
  }

  /** Acknowledged envelopes not delivered in any phase yet. */
  long missing() {
    return acked.stream().filter(e -> !firstDelivery.containsKey(e)).count();
  }

  Result result(int cycles) {
    long delivered = acked.stream().filter(firstDelivery::containsKey).count();
    long stranded = acked.stream().filter(e -> firstDelivery.get(e) == Phase.FINAL).count();
    return new Result(cycles, acked.size(), delivered, acked.size() - delivered, stranded,
        duplicates.get(), redelivered.get());
  }
}
