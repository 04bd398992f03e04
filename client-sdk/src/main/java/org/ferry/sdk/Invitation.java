package org.ferry.sdk;

import java.time.Instant;

/**
 * A one-time invitation. Hand {@link #uri()} to one person over a channel you trust (in
 * person, as a QR code); whoever uses it first becomes the contact.
 *
 * @param uri the {@code ferry:invite/...} URI, under 300 characters
 * @param expiresAt after this, the invitation cannot be accepted
 */
public record Invitation(String label, String uri, Instant expiresAt) {}
