package org.ferry.server.internal.store;

/** An outbound item at its position in its destination's queue. */
public record OutboundEntry(byte[] destination, long seq, OutboundItem item) {}
