package org.ferry.sdk;

/**
 * Something the SDK could not do, with a {@link Reason} an app can act on and a message a
 * person can read. Whenever this is thrown, local state is as it was before the call, except
 * where a method's documentation says otherwise.
 */
public final class FerryException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  /** Why an operation failed. */
  public enum Reason {
    /** The server could not be reached (network, censorship, server down). Try again later. */
    UNREACHABLE,
    /**
     * The server presented a different key than the one pinned in its address. It may be an
     * impersonation: do not retry blindly; get the address again through a trusted channel.
     */
    SERVER_KEY_MISMATCH,
    /** The server refused the request (the message says why). */
    REJECTED,
    /** The invitation is malformed or not a Ferry invitation. */
    INVALID_INVITATION,
    /** The invitation has expired; ask for a new one. */
    INVITATION_EXPIRED,
    /** Somebody already used this invitation; if it was not you, it may have been intercepted. */
    INVITATION_USED,
    /** This client accepted the invitation already; the message names the contact it made. */
    ALREADY_ACCEPTED,
    /** No contact has that label. */
    UNKNOWN_CONTACT,
    /** A contact with that label exists already, or the label is not allowed. */
    INVALID_LABEL,
    /**
     * The contact's identity key changed since it was first seen (a new one came in their name).
     * Nothing is sent to them until the user compares the new safety number
     * ({@link Contact#pendingSafetyNumber}) with theirs and calls {@link FerryClient#verify}.
     */
    IDENTITY_CHANGED,
    /**
     * A safety number given to {@link FerryClient#verify} is not one: it must be 60 decimal
     * digits (whitespace is ignored). Nothing was changed.
     */
    INVALID_SAFETY_NUMBER,
    /**
     * The safety number given to {@link FerryClient#verify} is not the one computed with the
     * contact's identity key (nor with a pending new one): someone may be in the middle, or it
     * was mistyped. Nothing was changed; sending stays as it was.
     */
    SAFETY_NUMBER_MISMATCH,
    /** The contact cannot be sent to yet (they have not answered the invitation). */
    CONTACT_NOT_READY,
    /** The client has not been initialised with {@code initialize}, or was initialised already. */
    NOT_INITIALIZED,
    ALREADY_INITIALIZED,
    /** The local store could not be opened or written (wrong key, in use, disk). */
    STORAGE,
    /** The message is too large for one envelope. */
    TOO_LARGE,
    /**
     * The contact's mailbox (or their server's storage) is full: they have not collected their
     * messages for a while. Nothing was sent; try again later.
     */
    RECIPIENT_FULL,
    /** The home server is making mailboxes for too many people right now; try again later. */
    RATE_LIMITED,
    /**
     * The home server makes mailboxes only for holders of its operator's creation token, and
     * none (or a wrong one) was given at {@code initialize}.
     */
    CREATION_TOKEN_REQUIRED,
    /** A bridge line is malformed; the message says how. Nothing was stored. */
    INVALID_BRIDGE,
    /**
     * A message's text is not valid Unicode (a lone UTF-16 surrogate): it could not cross the
     * wire as it is. Nothing was sent.
     */
    INVALID_TEXT,
    /**
     * The client was closed. For a {@code sendAsync} whose message was not yet taken by the
     * contact's server: the message stays queued and is sent when the client runs again.
     */
    CLOSED,
    /**
     * A message sent to a contact on another server was not delivered in time: our home server
     * held it, but the contact's server did not accept it before its time to live ran out (it
     * was unreachable, or refused us for longer). Send it again if it still matters.
     */
    EXPIRED,
    /**
     * A server's federation policy refuses the other server (a denylist, an allowlist without
     * it, federation turned off): our home server does not forward to the contact's server, or
     * the contact's server does not take items from ours. The message names which. Waiting does
     * not help; the operators can change it.
     */
    PEER_REFUSED,
    /**
     * The contact's server's routing key, as our home server handed it over, is not signed by
     * the key that server's address pins, or is not valid now: the home server (or someone on
     * its path to the contact's server) may be trying to learn which mailbox we write to. Nothing
     * was sent; the outbox tries again later. See docs/sdk.md, "Federation".
     */
    ROUTING_KEY_UNVERIFIED,
  }

  private final Reason reason;

  public FerryException(Reason reason, String message) {
    super(message);
    this.reason = reason;
  }

  public FerryException(Reason reason, String message, Throwable cause) {
    super(message, cause);
    this.reason = reason;
  }

  public Reason reason() {
    return reason;
  }
}
