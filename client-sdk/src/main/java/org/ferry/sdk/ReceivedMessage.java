package org.ferry.sdk;

import java.time.Instant;

/**
 * A text message from a contact.
 *
 * @param contactLabel the sender's local label
 * @param text the message, exactly as sent (it may contain any characters: escape it before
 *     printing to a terminal)
 * @param sentAt the sender's clock when it was sent; not verified
 * @param receivedAt our clock when it was decrypted
 * @param messageId the envelope id, unique per message
 */
public record ReceivedMessage(
    String contactLabel, String text, Instant sentAt, Instant receivedAt, String messageId) {}
