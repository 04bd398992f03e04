package org.ferry.server.internal.store;

import java.util.List;
import org.ferry.server.internal.mailbox.QueuedEnvelope;

/**
 * What one read of a mailbox's queue found: its envelopes in order, and the position up to
 * which the read covered the queue. Everything of the mailbox at or below {@code scannedTo} is
 * in {@code envelopes} or was skipped on purpose (expired), so the next read starts above it:
 * a read that finds nothing deliverable still moves the reader on.
 */
public record QueueSlice(List<QueuedEnvelope> envelopes, long scannedTo) {
  public QueueSlice {
    envelopes = List.copyOf(envelopes);
  }
}
