package org.ferry.server.internal.mailbox;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import io.grpc.Status;
import org.ferry.proto.ErrorReasons;
import org.ferry.proto.OwnerKeys;
import org.ferry.server.internal.grpc.GrpcErrors;
import org.ferry.server.internal.store.MailboxSequencer;
import org.ferry.server.internal.store.MailboxStore;
import org.ferry.server.internal.store.MailboxUsage;
import org.ferry.server.internal.store.QueueSlice;
import org.ferry.server.internal.store.SeenMark;
import org.ferry.server.internal.time.ServerClock;
import org.ferry.server.internal.util.Bytes;

/** Mailboxes, sends, deliveries and invitations: the rules, independent of gRPC. */
public final class MailboxManager {
  public static final Duration MAX_INVITATION_TTL = Duration.ofDays(30);
  public static final int MAX_INVITATION_BLOB = 8192;
  /** See {@link InvitationBlob#TAKE_GRACE}. */
  public static final Duration TAKE_GRACE = InvitationBlob.TAKE_GRACE;

  private final MailboxStore store;
  private final ServerClock clock;
  private final SecureRandom random;
  private final Duration defaultTtl;
  private final ServerLimits limits;
  private final StorageBudget budget;
  private final QuotaGuard quotas;
  private final TokenBucket creations;
  private final Object invitationLock = new Object();
  private volatile UnsafeWriter unsafeWriter;

  public MailboxManager(
      MailboxStore store,
      ServerClock clock,
      SecureRandom random,
      Duration defaultTtl,
      ServerLimits limits) {
    if (defaultTtl.isNegative() || defaultTtl.isZero()) {
      throw new IllegalArgumentException("default ttl must be positive: " + defaultTtl);
    }
    this.store = store;
    this.clock = clock;
    this.random = random;
    this.defaultTtl = defaultTtl;
    this.limits = limits;
    this.budget = new StorageBudget(store, limits.queuedBytes());
    this.quotas = new QuotaGuard(store, limits, budget);
    this.creations = new TokenBucket(clock::nanoTime, limits.createPerSecond(), limits.createBurst());
  }

  /**
   * For the crash harness only: acknowledge sends at once and write them later, so that the
   * harness can show that it notices lost messages. Never set in a real server.
   */
  public interface UnsafeWriter {
    void later(Runnable write);
  }

  public void acknowledgeBeforeWriting(UnsafeWriter writer) {
    this.unsafeWriter = writer;
  }

  /**
   * Creates a mailbox, if the creation token (empty when none was given) is the operator's and
   * the creation rate allows; the caller has checked the key and hash are well-formed.
   */
  public MailboxId create(byte[] ownerKey, byte[] sendCapabilityHash, String creationToken) {
    if (limits.creationTokenHash().isPresent()
        && !MessageDigest.isEqual(
            Bytes.sha256(creationToken.getBytes(StandardCharsets.UTF_8)),
            limits.creationTokenHash().get())) {
      throw ErrorReasons.withReason(
          Status.Code.UNAUTHENTICATED,
          ErrorReasons.CREATION_TOKEN_REQUIRED,
          creationToken.isEmpty()
              ? "this server makes mailboxes only with its operator's creation token"
              : "wrong creation token");
    }
    Duration wait = creations.tryTake();
    if (!wait.isZero()) {
      throw ErrorReasons.withRetry(
          Status.Code.RESOURCE_EXHAUSTED,
          ErrorReasons.RATE_LIMITED,
          "too many mailboxes made lately; try again later",
          wait);
    }
    MailboxId id = MailboxId.random(random);
    store.createMailbox(new MailboxRecord(id, ownerKey, sendCapabilityHash, clock.instant()));
    return id;
  }

  public MailboxRecord require(MailboxId id) {
    return store.mailbox(id).orElseThrow(() -> GrpcErrors.notFound("no such mailbox"));
  }

  /**
   * Appends an envelope once the capability and the quotas check out; returns after it is
   * durable. See {@link #sendAsync}.
   */
  public void send(MailboxId id, byte[] capability, byte[] envelopeId, byte[] body, Duration ttl) {
    try {
      sendAsync(id, capability, envelopeId, body, ttl).join();
    } catch (CompletionException e) {
      throw e.getCause() instanceof RuntimeException r ? r : e;
    }
  }

  /**
   * Appends an envelope once the capability and the quotas check out. Checks fail at once (the
   * exception is thrown here): NOT_FOUND, PERMISSION_DENIED, RESOURCE_EXHAUSTED over quota, with
   * nothing written. The write itself goes through the store's group commit; the future
   * completes once the envelope is durable, or fails with the store's exception. A ttl of zero
   * means the default; longer ones are cut to the default, which is also the maximum.
   */
  public CompletableFuture<Void> sendAsync(
      MailboxId id, byte[] capability, byte[] envelopeId, byte[] body, Duration ttl) {
    MailboxRecord mailbox = require(id);
    if (!MessageDigest.isEqual(Bytes.sha256(capability), mailbox.sendCapabilityHash())) {
      throw GrpcErrors.permissionDenied("wrong send capability for this mailbox");
    }
    Duration effective = ttl.isZero() || ttl.compareTo(defaultTtl) > 0 ? defaultTtl : ttl;
    Instant expiresAt = clock.instant().plus(effective);
    QuotaGuard.Reservation reservation = quotas.reserve(id, body.length);
    UnsafeWriter unsafe = unsafeWriter;
    if (unsafe != null) {
      unsafe.later(() -> store.appendAsync(id, envelopeId, body, expiresAt)
          .whenComplete((seq, failure) -> reservation.close()));
      return CompletableFuture.completedFuture(null);
    }
    // The store tells the mailbox's watchers (its owner's receive streams) when the write is
    // done, before this future completes.
    CompletableFuture<Long> write;
    try {
      write = store.appendAsync(id, envelopeId, body, expiresAt);
    } catch (RuntimeException e) {
      reservation.close();
      throw e;
    }
    return write.whenComplete((seq, failure) -> reservation.close()).thenApply(seq -> null);
  }

  /**
   * Checks a forwarder (a client of this server proving it with its forwarder mailbox): the
   * mailbox exists here and {@code capability} is its send capability. UNAUTHENTICATED
   * otherwise, without saying which.
   */
  public void authenticateForwarder(MailboxId id, byte[] capability) {
    boolean good = store.mailbox(id)
        .map(m -> MessageDigest.isEqual(Bytes.sha256(capability), m.sendCapabilityHash()))
        .orElse(false);
    if (!good) {
      throw GrpcErrors.unauthenticated("unknown forwarder mailbox or wrong capability");
    }
  }

  /**
   * Appends an item a peer server delivered, with the same checks as {@link #sendAsync}, and
   * remembers its id in the same write ({@code seen}). {@code expiresAt} is cut to the default
   * ttl from now.
   */
  public CompletableFuture<Void> deliverFederated(
      MailboxId id, byte[] capability, byte[] itemId, byte[] body, Instant expiresAt, SeenMark seen) {
    MailboxRecord mailbox = require(id);
    if (!MessageDigest.isEqual(Bytes.sha256(capability), mailbox.sendCapabilityHash())) {
      throw GrpcErrors.permissionDenied("wrong send capability for this mailbox");
    }
    Instant latest = clock.instant().plus(defaultTtl);
    Instant effective = expiresAt.isAfter(latest) ? latest : expiresAt;
    QuotaGuard.Reservation reservation = quotas.reserve(id, body.length);
    CompletableFuture<Long> write;
    try {
      write = store.appendAsync(id, itemId, body, effective, seen);
    } catch (RuntimeException e) {
      reservation.close();
      throw e;
    }
    return write.whenComplete((seq, failure) -> reservation.close()).thenApply(seq -> null);
  }

  /** The server's storage budget, which items held for other servers share with mailboxes. */
  public StorageBudget storageBudget() {
    return budget;
  }

  /** The longest an envelope waits here, and the ttl of a send that names none. */
  public Duration defaultTtl() {
    return defaultTtl;
  }

  /** What waits in a mailbox now. */
  public MailboxUsage usage(MailboxId id) {
    return store.usage(id);
  }

  /**
   * Removes every envelope and invitation whose time has run out by the clock's now, and
   * returns how many envelopes went. Reads only the expired part of the expiry index.
   */
  public int sweepExpired() {
    Instant now = clock.instant();
    int removed = store.deleteExpiredEnvelopes(now);
    synchronized (invitationLock) {
      store.deleteExpiredInvitations(now);
    }
    return removed;
  }

  /** Checks an owner's signature over a receive challenge; UNAUTHENTICATED if it is not. */
  public void authenticateReceiver(MailboxId id, byte[] challenge, byte[] signature) {
    MailboxRecord mailbox = require(id);
    if (!OwnerKeys.verify(
        mailbox.ownerKey(), signature, OwnerKeys.RECEIVE_CONTEXT, challenge, id.bytes())) {
      throw GrpcErrors.unauthenticated("bad owner signature for this mailbox");
    }
  }

  /**
   * Up to {@code limit} envelopes from {@code fromSeq} on, in order, read from the store; expired
   * ones met on the way are deleted and left out, and the slice still covers them, so a reader
   * moves past a run of expired envelopes instead of stopping at it.
   */
  public QueueSlice pending(MailboxId id, long fromSeq, int limit) {
    return pending(id, fromSeq, limit, Long.MAX_VALUE);
  }

  /**
   * Like {@link #pending(MailboxId, long, int)}, stopping once the envelopes read hold
   * {@code maxBytes} of body (at least one envelope): see {@link MailboxStore#read(MailboxId,
   * long, int, long)}.
   */
  public QueueSlice pending(MailboxId id, long fromSeq, int limit, long maxBytes) {
    Instant now = clock.instant();
    QueueSlice slice = store.read(id, fromSeq, limit, maxBytes);
    List<Long> expired = slice.envelopes().stream()
        .filter(e -> e.isExpired(now)).map(QueuedEnvelope::seq).toList();
    if (expired.isEmpty()) {
      return slice;
    }
    // Not waited for: the reader runs on an event loop, and the slice moves past them anyway.
    store.deleteAllAsync(id, expired);
    return new QueueSlice(
        slice.envelopes().stream().filter(e -> !e.isExpired(now)).toList(), slice.scannedTo());
  }

  /** Whether an envelope handed over fresh from a write has expired by now (a tiny ttl). */
  public boolean isExpired(QueuedEnvelope envelope) {
    return envelope.isExpired(clock.instant());
  }

  /** The highest position of the mailbox that a read can see now. */
  public long visibleUpTo(MailboxId id) {
    return store.visibleUpTo(id);
  }

  /** Removes envelopes their owner has processed; positions already gone are skipped. */
  public void acknowledge(MailboxId id, List<Long> seqs) {
    store.deleteAll(id, seqs);
  }

  /**
   * Removes envelopes their owner has processed, through the store's group commit without a
   * sync of their own; the future completes once the removal is written.
   */
  public CompletableFuture<Integer> acknowledgeAsync(MailboxId id, List<Long> seqs) {
    return store.deleteAllAsync(id, seqs);
  }

  /** Watches the mailbox's finished writes; see {@link MailboxStore#watch}. */
  public MailboxSequencer.Watch watch(MailboxId id, MailboxSequencer.Watcher watcher) {
    return store.watch(id, watcher);
  }

  public void putInvitation(
      MailboxId id, byte[] fetchTokenHash, byte[] blob, Duration ttl, byte[] signature) {
    MailboxRecord mailbox = require(id);
    byte[] ttlBytes = ByteBuffer.allocate(4).putInt((int) ttl.toSeconds()).array();
    if (!OwnerKeys.verify(
        mailbox.ownerKey(),
        signature,
        OwnerKeys.PUT_INVITATION_CONTEXT,
        id.bytes(),
        fetchTokenHash,
        Bytes.sha256(blob),
        ttlBytes)) {
      throw GrpcErrors.unauthenticated("bad owner signature for this mailbox");
    }
    synchronized (invitationLock) {
      store.putInvitation(InvitationBlob.untaken(id, fetchTokenHash, blob, clock.instant().plus(ttl)));
    }
  }

  /**
   * Hands out an invitation's bundle once, and remembers that it did. A taker that gives a
   * {@code takeId} (empty for none) gets the same bundle again when it asks with the same id
   * within {@link #TAKE_GRACE}: its first answer may have been lost. Everyone else is told it
   * was used.
   */
  public byte[] takeInvitation(MailboxId id, byte[] fetchToken, byte[] takeId) {
    synchronized (invitationLock) {
      Instant now = clock.instant();
      InvitationBlob found =
          store.invitation(id).orElseThrow(() -> GrpcErrors.notFound("no such invitation"));
      if (found.isExpired(now)) {
        store.deleteInvitation(id);
        throw ErrorReasons.withReason(Status.Code.NOT_FOUND, ErrorReasons.INVITATION_EXPIRED, "invitation expired");
      }
      if (!MessageDigest.isEqual(Bytes.sha256(fetchToken), found.fetchTokenHash())) {
        throw GrpcErrors.permissionDenied("wrong fetch token for this invitation");
      }
      if (found.taken()) {
        boolean sameTaker = takeId.length > 0
            && found.takeIdHash().isPresent()
            && MessageDigest.isEqual(Bytes.sha256(takeId), found.takeIdHash().get());
        if (sameTaker && !found.graceOver(now)) {
          return found.blob();
        }
        if (found.blob().length > 0 && found.graceOver(now)) {
          store.putInvitation(found.takenMarker());
        }
        throw ErrorReasons.withReason(Status.Code.NOT_FOUND, ErrorReasons.INVITATION_USED, "invitation already used");
      }
      store.putInvitation(takeId.length == 0
          ? found.takenMarker()
          : found.takenBy(Bytes.sha256(takeId), now));
      return found.blob();
    }
  }

  /**
   * Deletes a mailbox for good, with its envelopes and invitation, once the owner's signature
   * over {@link OwnerKeys#DELETE_MAILBOX_CONTEXT} and the id checks out.
   */
  public void deleteMailbox(MailboxId id, byte[] signature) {
    MailboxRecord mailbox = require(id);
    if (!OwnerKeys.verify(mailbox.ownerKey(), signature, OwnerKeys.DELETE_MAILBOX_CONTEXT, id.bytes())) {
      throw GrpcErrors.unauthenticated("bad owner signature for this mailbox");
    }
    synchronized (invitationLock) {
      store.deleteMailbox(id);
    }
  }
}
