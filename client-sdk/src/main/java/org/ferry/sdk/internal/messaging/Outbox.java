package org.ferry.sdk.internal.messaging;

import com.google.protobuf.InvalidProtocolBufferException;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.ferry.proto.ServerAddress;
import org.ferry.proto.local.v1.ContactRecord;
import org.ferry.proto.local.v1.OutboxItem;
import org.ferry.proto.v1.Content;
import org.ferry.sdk.FerryException;
import org.ferry.sdk.internal.ClientContext;
import org.ferry.sdk.internal.contacts.ContactBook;
import org.ferry.sdk.internal.store.LocalStore;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The durable outbox behind {@code FerryClient.sendAsync}: messages are encrypted and sealed when
 * queued (their ratchet step committed with them, see {@link MessageSender#queue}) and sent as
 * they are until the contact's server holds them, across network outages and restarts.
 *
 * <p>Delivery is at least once, in queue order per contact: each contact's server has one lane
 * that sends its items one after another (all of them to our home server, which forwards those
 * for other servers: see {@link MessageSender}), so one server the home server cannot reach, or
 * whose routing key does not verify, never holds up the others. An item the home server took
 * for another server leaves the outbox; its outcome comes later ({@link SendLog}). A resend is the very same envelope, which the recipient keeps once (its id). After a
 * network failure a lane waits with exponential back-off and full jitter, from
 * {@link #FIRST_RETRY} up to {@link #MAX_RETRY}; a contact whose mailbox is full is skipped
 * for the round, so the contact's other messages wait behind it and other contacts' do not. A
 * refusal that cannot change by waiting (the mailbox is gone or does not take our capability,
 * the contact was removed) drops the item and reports the failure.
 *
 * <p>A contact whose new identity key waits for the user's verification has its messages held.
 * Once the key is verified they are sealed again under the session started with the new key
 * ({@link #resealAll}), keeping their ids, and go out in order when that session is set up.
 */
public final class Outbox implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(Outbox.class);
  static final String PREFIX = "outbox/";
  /** The first wait after a failed round: 1 s. */
  public static final Duration FIRST_RETRY = Duration.ofSeconds(1);
  /** The longest wait between rounds: 5 minutes. */
  public static final Duration MAX_RETRY = Duration.ofMinutes(5);

  /** What becomes of queued messages. Called on the outbox's threads. */
  public interface Events {
    /**
     * Our home server holds the message: in the contact's mailbox if it is on the home server,
     * else in the home server's queue for the contact's server.
     */
    void accepted(String contactId, String messageId);

    /**
     * The contact's server holds the message: right after {@link #accepted} for a mailbox on
     * the home server; for another server, when its outcome comes back (not from the outbox).
     */
    void delivered(String contactId, String messageId);

    /** The message will not be delivered, for {@code why}. */
    void failed(String contactId, String messageId, FerryException why);
  }

  private final ClientContext ctx;
  private final MessageSender sender;
  private final Events events;
  private final AtomicLong sequence;
  private final ConcurrentMap<String, CompletableFuture<String>> waiting = new ConcurrentHashMap<>();
  private final ConcurrentMap<ServerAddress, Lane> lanes = new ConcurrentHashMap<>();
  private final ExecutorService senders;
  private final ScheduledExecutorService timer;
  private volatile boolean closed;

  public Outbox(ClientContext ctx, MessageSender sender, Events events) {
    this.ctx = ctx;
    this.sender = sender;
    this.events = events;
    this.sequence = new AtomicLong(
        ctx.store().lastName(PREFIX).map(name -> Long.parseLong(name.substring(PREFIX.length()))).orElse(0L));
    this.senders = Executors.newCachedThreadPool(daemonThreads("ferry-outbox"));
    this.timer = Executors.newSingleThreadScheduledExecutor(daemonThreads("ferry-outbox-timer"));
  }

  private static ThreadFactory daemonThreads(String name) {
    AtomicInteger n = new AtomicInteger();
    return r -> {
      Thread t = new Thread(r, name + "-" + n.incrementAndGet());
      t.setDaemon(true);
      return t;
    };
  }

  /**
   * Encrypts and queues {@code content} for the contact, then starts sending.
   *
   * @return completes with the message id (hex) once the contact's server holds it, or
   *     exceptionally with a {@link FerryException} if it never will
   * @throws FerryException UNKNOWN_CONTACT, CONTACT_NOT_READY, IDENTITY_CHANGED, TOO_LARGE:
   *     nothing was queued
   */
  public CompletableFuture<String> submit(String contactId, Content content) {
    if (closed) {
      throw new FerryException(FerryException.Reason.CLOSED, "the client is closed");
    }
    // The name is taken inside the transaction, so names follow the order of commits.
    OutboxItem item = sender.queue(contactId, content, this::nextName);
    String id = messageId(item);
    CompletableFuture<String> done = new CompletableFuture<>();
    waiting.put(id, done);
    lane(ServerAddress.parse(item.getTo().getServer())).runSoon();
    return done;
  }

  /**
   * A fresh record name at the end of the outbox, for a message put back (see {@link SendLog});
   * take it inside the transaction that writes it.
   */
  public String nextName() {
    return PREFIX + String.format("%020d", sequence.incrementAndGet());
  }

  /** The queued messages, in order. */
  public List<OutboxItem> items() {
    List<OutboxItem> all = new ArrayList<>();
    forEachItem((name, item) -> all.add(item));
    return all;
  }

  /** Starts sending whatever waits (left by an earlier run, or held back by an outage) now. */
  public void kick() {
    Set<ServerAddress> servers = new HashSet<>();
    forEachItem((name, item) -> {
      servers.add(ServerAddress.parse(item.getTo().getServer()));
      return true;
    });
    servers.forEach(server -> lane(server).runSoon());
  }

  /**
   * Runs a round now on every lane this client has used, without reading the outbox: for
   * something that may unblock held items (an arrival that completes a restarted session), on a
   * path too hot to read and decrypt the whole outbox each time.
   */
  public void retryNow() {
    lanes.values().forEach(Lane::runSoon);
  }

  /** Items read a page at a time, so that a long outbox never sits in memory whole. */
  static final int PAGE = 64;

  /** Calls {@code action} for each queued item in order, while it returns true. */
  private void forEachItem(java.util.function.BiPredicate<String, OutboxItem> action) {
    String after = PREFIX;
    while (true) {
      Map<String, byte[]> page = ctx.store().scan(PREFIX, after, PAGE);
      for (Map.Entry<String, byte[]> e : page.entrySet()) {
        OutboxItem item;
        try {
          item = OutboxItem.parseFrom(e.getValue());
        } catch (InvalidProtocolBufferException ex) {
          throw new FerryException(FerryException.Reason.STORAGE, "a queued message is unreadable", ex);
        }
        if (!action.test(e.getKey(), item)) {
          return;
        }
        after = e.getKey();
      }
      if (page.size() < PAGE) {
        return;
      }
    }
  }

  /**
   * After a verified identity change: marks the contact's queued messages to be sealed again
   * under the new session before they go, in {@code txn}.
   */
  public void resealAll(LocalStore.Txn txn, String contactId) {
    for (Map.Entry<String, byte[]> e : txn.scan(PREFIX).entrySet()) {
      try {
        OutboxItem item = OutboxItem.parseFrom(e.getValue());
        if (item.getContactId().equals(contactId)) {
          txn.put(e.getKey(), item.toBuilder().setReseal(true).build().toByteArray());
        }
      } catch (InvalidProtocolBufferException ex) {
        throw new FerryException(FerryException.Reason.STORAGE, "a queued message is unreadable", ex);
      }
    }
  }

  /** How many messages wait. */
  public int size() {
    return ctx.store().count(PREFIX);
  }

  private Lane lane(ServerAddress server) {
    return lanes.computeIfAbsent(server, Lane::new);
  }

  private static String messageId(OutboxItem item) {
    return HexFormat.of().formatHex(item.getEnvelopeId().toByteArray());
  }

  /** One destination server's sends: one round at a time, rounds after back-off. */
  private final class Lane {
    private final ServerAddress server;
    private boolean running;
    private boolean again;
    private Duration backOff = Duration.ZERO;
    private java.util.concurrent.ScheduledFuture<?> timerTask;

    Lane(ServerAddress server) {
      this.server = server;
    }

    /** Runs a round now (or right after the one running), whatever back-off was due. */
    synchronized void runSoon() {
      if (closed) {
        return;
      }
      if (running) {
        again = true;
        return;
      }
      if (timerTask != null) {
        timerTask.cancel(false);
        timerTask = null;
      }
      running = true;
      senders.execute(this::round);
    }

    private synchronized void runLater(Duration delay) {
      if (closed) {
        return;
      }
      timerTask = timer.schedule(this::runSoon, delay.toMillis(), TimeUnit.MILLISECONDS);
    }

    private void round() {
      boolean failed = false;
      try {
        failed = !sendAll();
      } catch (RuntimeException e) {
        log.warn("the outbox failed a round; trying again later", e);
        failed = true;
      } finally {
        finish(failed);
      }
    }

    private synchronized void finish(boolean failed) {
      running = false;
      if (again && !failed) {
        again = false;
        runSoon();
        return;
      }
      again = false;
      if (failed) {
        backOff = backOff.isZero() ? FIRST_RETRY
            : backOff.multipliedBy(2).compareTo(MAX_RETRY) > 0 ? MAX_RETRY : backOff.multipliedBy(2);
        // Full jitter: anywhere in [backOff / 2, backOff].
        long half = backOff.toMillis() / 2;
        runLater(Duration.ofMillis(half + ctx.random().nextLong(half + 1)));
      } else {
        backOff = Duration.ZERO;
      }
    }

    /** Sends this server's items in order; false if some must wait for a later round. */
    private boolean sendAll() {
      Set<String> heldBack = new HashSet<>();
      boolean[] left = {false};
      boolean[] unreachable = {false};
      forEachItem((name, queued) -> {
        if (closed) {
          return false;
        }
        if (!ServerAddress.parse(queued.getTo().getServer()).equals(server)
            || heldBack.contains(queued.getContactId())) {
          return true;
        }
        OutboxItem item = queued;
        ContactRecord contact = contact(item.getContactId());
        if (contact == null) {
          done(name, item, new FerryException(FerryException.Reason.UNKNOWN_CONTACT,
              "the contact was removed before the message left"), false);
          return true;
        }
        if (!contact.getPendingIdentityKey().isEmpty()) {
          // Held until the user verifies the new key (FerryClient.verify kicks the outbox).
          heldBack.add(item.getContactId());
          return true;
        }
        if (item.getReseal()) {
          try {
            item = sender.reseal(name, item);
          } catch (FerryException notYet) {
            // The session under the verified key is still being set up (CONTACT_NOT_READY):
            // this contact's messages wait for it, and are tried with each arrival.
            heldBack.add(item.getContactId());
            left[0] = true;
            return true;
          }
        }
        try {
          done(name, item, null, sender.deliver(item));
        } catch (FerryException failure) {
          if (isFinal(failure)) {
            done(name, item, failure, false);
          } else if (failure.reason() == FerryException.Reason.RECIPIENT_FULL) {
            // This contact's later messages wait behind it; others go on.
            heldBack.add(item.getContactId());
            left[0] = true;
          } else {
            log.debug("outbox: {} unreachable now; trying again later", server.hostPort());
            unreachable[0] = true;
            return false;
          }
        }
        return true;
      });
      return !left[0] && !unreachable[0];
    }
  }

  private ContactRecord contact(String contactId) {
    return ContactBook.byId(ctx.store(), contactId).orElse(null);
  }

  /**
   * Removes a sent or failed item (a forwarded one stays in the {@link SendLog} until its
   * outcome; a failed one is listed there), then tells the app. A sent one's removal is not
   * synced to disk: if a crash loses it, the item is sent again, and the recipient keeps one copy.
   *
   * @param forwarded whether the home server took it for another server
   */
  private void done(String name, OutboxItem item, FerryException failure, boolean forwarded) {
    String id = messageId(item);
    try (LocalStore.Txn txn = ctx.store().begin()) {
      txn.delete(name);
      if (failure == null) {
        if (forwarded) {
          SendLog.held(txn, id, ctx.clock().millis());
        }
        txn.commitWithoutSync();
      } else {
        SendLog.failed(txn, new SendLog.Failed(id, item.getContactId(), item.getTo().getServer(),
            item.getQueuedAt(), ctx.clock().millis(), failure.reason(), failure.getMessage()));
        txn.commit();
      }
    }
    CompletableFuture<String> future = waiting.remove(id);
    if (failure == null) {
      events.accepted(item.getContactId(), id);
      if (!forwarded) {
        events.delivered(item.getContactId(), id);
      }
      if (future != null) {
        future.complete(id);
      }
    } else {
      log.info("a queued message was given up: {}", failure.reason());
      events.failed(item.getContactId(), id, failure);
      if (future != null) {
        future.completeExceptionally(failure);
      }
    }
  }

  /** A refusal that waiting cannot change: the server answered, about this mailbox or message. */
  static boolean isFinal(FerryException e) {
    switch (e.reason()) {
      case TOO_LARGE, UNKNOWN_CONTACT, CONTACT_NOT_READY, PEER_REFUSED -> {
        return true;
      }
      case REJECTED -> {
        if (e.getCause() instanceof StatusRuntimeException s) {
          Status.Code code = s.getStatus().getCode();
          return code != Status.Code.RESOURCE_EXHAUSTED && MessageSender.isRefusal(s);
        }
        return false;
      }
      default -> {
        return false;
      }
    }
  }

  /**
   * Stops sending. Queued messages stay in the store and go out when a client opens the data
   * directory again; futures still waiting fail with CLOSED.
   */
  @Override
  public void close() {
    closed = true;
    timer.shutdownNow();
    senders.shutdownNow();
    try {
      // A round cut off in its call ends at once; the store must outlive it.
      if (!senders.awaitTermination(10, TimeUnit.SECONDS)) {
        log.warn("an outbox round did not end within 10 s of close");
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    FerryException closedFailure = new FerryException(FerryException.Reason.CLOSED,
        "the client was closed before the contact's server took the message; it stays queued"
            + " and is sent when the client runs again");
    waiting.values().forEach(f -> f.completeExceptionally(closedFailure));
    waiting.clear();
  }
}
