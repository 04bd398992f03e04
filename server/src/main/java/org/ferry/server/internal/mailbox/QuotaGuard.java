package org.ferry.server.internal.mailbox;

import io.grpc.Status;
import java.util.concurrent.ConcurrentHashMap;
import org.ferry.proto.ErrorReasons;
import org.ferry.server.internal.store.MailboxStore;
import org.ferry.server.internal.store.MailboxUsage;

/**
 * Checks a send against the mailbox's quota and the server's {@link StorageBudget} before
 * anything is written, and holds its share until the write is done, so concurrent senders cannot
 * overshoot together.
 *
 * <p>The persisted counts are the truth; in memory are only the sends in flight. Between a
 * write and the release of its reservation the send is counted twice, which can refuse a send
 * near the limit a moment early, never let one through beyond it.
 */
final class QuotaGuard {
  private static final int STRIPES = 64;

  private final MailboxStore store;
  private final ServerLimits limits;
  private final Object[] stripes = new Object[STRIPES];
  /** Per mailbox with sends in flight: {envelopes, bytes}. Entries go when they reach zero. */
  private final ConcurrentHashMap<MailboxId, long[]> inFlight = new ConcurrentHashMap<>();
  private final StorageBudget budget;

  QuotaGuard(MailboxStore store, ServerLimits limits, StorageBudget budget) {
    this.store = store;
    this.limits = limits;
    this.budget = budget;
    for (int i = 0; i < STRIPES; i++) {
      stripes[i] = new Object();
    }
  }

  /** A send's claim on quota; close it once the write has succeeded or failed. */
  interface Reservation extends AutoCloseable {
    @Override
    void close();
  }

  /** Reserves room for one envelope of {@code bytes}, or fails with RESOURCE_EXHAUSTED. */
  Reservation reserve(MailboxId id, int bytes) {
    StorageBudget.Reservation server;
    synchronized (stripe(id)) {
      MailboxUsage used = store.usage(id);
      long[] pending = inFlight.getOrDefault(id, new long[2]);
      if (used.count() + pending[0] + 1 > limits.mailboxEnvelopes()
          || used.bytes() + pending[1] + bytes > limits.mailboxBytes()) {
        throw ErrorReasons.withReason(
            Status.Code.RESOURCE_EXHAUSTED,
            ErrorReasons.MAILBOX_FULL,
            "the mailbox is full until its owner collects what waits in it");
      }
      server = budget.reserve(bytes);
      inFlight.merge(id, new long[] {1, bytes}, (a, b) -> new long[] {a[0] + b[0], a[1] + b[1]});
    }
    return () -> release(id, bytes, server);
  }

  private void release(MailboxId id, int bytes, StorageBudget.Reservation server) {
    synchronized (stripe(id)) {
      inFlight.computeIfPresent(
          id, (k, v) -> v[0] == 1 ? null : new long[] {v[0] - 1, v[1] - bytes});
    }
    server.close();
  }

  private Object stripe(MailboxId id) {
    return stripes[Math.floorMod(id.hashCode(), STRIPES)];
  }
}
