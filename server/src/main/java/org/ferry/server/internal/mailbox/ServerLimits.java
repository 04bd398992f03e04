package org.ferry.server.internal.mailbox;

import java.util.Optional;

/**
 * What one server lets its users store and make.
 *
 * @param mailboxEnvelopes most envelopes waiting in one mailbox
 * @param mailboxBytes most body bytes waiting in one mailbox
 * @param queuedBytes most body bytes waiting in all mailboxes together (the disk budget)
 * @param createPerSecond mailboxes the server makes per second, sustained
 * @param createBurst mailboxes it makes at once after a quiet spell
 * @param creationTokenHash SHA-256 of the token a creator must present, if one is required
 */
public record ServerLimits(
    long mailboxEnvelopes,
    long mailboxBytes,
    long queuedBytes,
    double createPerSecond,
    int createBurst,
    Optional<byte[]> creationTokenHash) {
  public static final ServerLimits DEFAULTS =
      new ServerLimits(10_000, 64L << 20, 4L << 30, 5, 100, Optional.empty());

  public ServerLimits {
    if (mailboxEnvelopes <= 0 || mailboxBytes <= 0 || queuedBytes <= 0) {
      throw new IllegalArgumentException(
          "quotas must be positive: " + mailboxEnvelopes + ", " + mailboxBytes + ", " + queuedBytes);
    }
    if (!(createPerSecond > 0) || createBurst < 1) {
      throw new IllegalArgumentException(
          "creation rate must be positive: " + createPerSecond + "/s, burst " + createBurst);
    }
    creationTokenHash = creationTokenHash.map(byte[]::clone);
  }
}
