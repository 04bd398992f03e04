package org.ferry.server.internal.store;

import java.time.Instant;
import org.ferry.server.internal.mailbox.MailboxId;

/** An envelope the server itself puts in a mailbox (a forward's outcome for its forwarder). */
public record OutcomeEnvelope(MailboxId mailbox, byte[] envelopeId, byte[] body, Instant expiresAt) {}
