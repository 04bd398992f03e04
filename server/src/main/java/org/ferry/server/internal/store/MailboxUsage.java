package org.ferry.server.internal.store;

/** What waits in one mailbox: envelopes and their body bytes. */
public record MailboxUsage(long count, long bytes) {
  public MailboxUsage {
    if (count < 0 || bytes < 0) {
      throw new IllegalStateException("negative usage: " + count + " envelopes, " + bytes + " bytes");
    }
  }
}
