package org.ferry.server.internal.mailbox;

import io.grpc.Status;
import java.util.concurrent.atomic.AtomicLong;
import org.ferry.proto.ErrorReasons;
import org.ferry.server.internal.store.MailboxStore;

/**
 * The server's storage budget ({@link ServerLimits#queuedBytes}, {@code --storage-budget}),
 * shared by everything it holds: envelopes queued in mailboxes and items held for other servers.
 * A write reserves its bytes before it starts and releases them once it is done, so concurrent
 * sends and forwards cannot overshoot the budget together.
 *
 * <p>The persisted totals are the truth; in memory are only the writes in flight. Between a
 * write and the release of its reservation its bytes count twice, which can refuse a write near
 * the limit a moment early, never let one through beyond it.
 */
public final class StorageBudget {
  private final MailboxStore store;
  private final long budgetBytes;
  private final AtomicLong inFlightBytes = new AtomicLong();

  StorageBudget(MailboxStore store, long budgetBytes) {
    this.store = store;
    this.budgetBytes = budgetBytes;
  }

  /** A write's claim on the budget; close it once the write has succeeded or failed. */
  public interface Reservation extends AutoCloseable {
    @Override
    void close();
  }

  /**
   * Reserves {@code bytes} of the budget.
   *
   * @throws io.grpc.StatusRuntimeException RESOURCE_EXHAUSTED with reason SERVER_FULL when they
   *     do not fit
   */
  public Reservation reserve(long bytes) {
    // Added before the check, so two writers racing each count the other: never overshoot.
    if (usedBytes() + inFlightBytes.addAndGet(bytes) > budgetBytes) {
      inFlightBytes.addAndGet(-bytes);
      throw ErrorReasons.withReason(
          Status.Code.RESOURCE_EXHAUSTED,
          ErrorReasons.SERVER_FULL,
          "the server's storage budget is used up");
    }
    return () -> inFlightBytes.addAndGet(-bytes);
  }

  /** Bytes held now: queued envelopes and items waiting for other servers (bodies). */
  public long usedBytes() {
    return store.queuedBytes() + store.outboundBytes();
  }
}
