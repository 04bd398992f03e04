package org.ferry.sdk;

import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Executor;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Consumer;
import org.ferry.proto.BridgeLine;
import org.ferry.sdk.internal.ClientContext;
import org.ferry.sdk.internal.messaging.MessageReceiver;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The always-on part of a {@link FerryClient}: the background receive loop, the app's listeners
 * and the thread that calls them.
 *
 * <p>The loop keeps the receive streams open ({@link MessageReceiver#stream}); when they fail it
 * reports the client offline, waits (exponential back-off with full jitter, 1 s doubling up to
 * {@link FerryClient#MAX_RECONNECT_DELAY}) and opens them again through the dialer, which picks
 * the carrier. Events go through one dispatch thread, in order; it hands messages and notices
 * from the local inbox to the listeners and forgets each once all of them returned. An entry
 * that finds no listener (the last one was removed during a hand-over) stays for the next.
 */
final class AlwaysOn implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(AlwaysOn.class);
  /** Most inbox entries handed over in one go before other events get their turn. */
  private static final int HAND_OVER_BATCH = 64;
  /** After a listener threw, how long until what it was given is handed over again: 2 s. */
  static final Duration RETRY_HAND_OVER = Duration.ofSeconds(2);

  private record Registered(FerryListener listener, Executor executor) {}

  private final ClientContext ctx;
  private final MessageReceiver receiver;
  private final Runnable onConnected;
  private final Runnable onArrival;
  private final CopyOnWriteArrayList<Registered> listeners = new CopyOnWriteArrayList<>();
  private volatile Thread dispatchThread;
  /** Set on an app executor's thread while it runs a listener call for this client. */
  private final ThreadLocal<Boolean> inListener = new ThreadLocal<>();
  private final ScheduledThreadPoolExecutor dispatch = new ScheduledThreadPoolExecutor(1, r -> {
    Thread t = new Thread(r, "ferry-events");
    t.setDaemon(true);
    dispatchThread = t;
    return t;
  });
  private final AtomicBoolean handOverQueued = new AtomicBoolean();
  private final ReentrantLock lock = new ReentrantLock();
  private final Condition changed = lock.newCondition();
  private long arrivals;
  private Thread loop;
  private volatile boolean stopping;
  /** Closing: nothing more is handed over (what is left stays in the local inbox). */
  private volatile boolean closing;
  private volatile Connectivity connectivity =
      new Connectivity(false, Optional.empty(), Optional.empty(), Optional.empty());

  /**
   * @param onConnected run on the loop's thread each time it has connected
   * @param onArrival run on the loop's thread after each delivery it kept
   */
  AlwaysOn(ClientContext ctx, MessageReceiver receiver, Runnable onConnected, Runnable onArrival) {
    dispatch.setExecuteExistingDelayedTasksAfterShutdownPolicy(false);
    this.ctx = ctx;
    this.receiver = receiver;
    this.onConnected = onConnected;
    this.onArrival = onArrival;
  }

  void addListener(FerryListener listener, Executor executor) {
    listeners.add(new Registered(Objects.requireNonNull(listener, "listener"), executor));
    inboxChanged();
  }

  void removeListener(FerryListener listener) {
    listeners.removeIf(r -> r.listener() == listener);
  }

  /** Starts the loop unless it runs. */
  void start() {
    lock.lock();
    try {
      if (loop != null) {
        return;
      }
      stopping = false;
      loop = new Thread(this::run, "ferry-receive");
      loop.setDaemon(true);
      loop.start();
    } finally {
      lock.unlock();
    }
  }

  boolean isRunning() {
    lock.lock();
    try {
      return loop != null;
    } finally {
      lock.unlock();
    }
  }

  Connectivity connectivity() {
    return connectivity;
  }

  /** Ends the loop and waits for it (its streams closed). */
  void stop() {
    Thread t;
    lock.lock();
    try {
      t = loop;
      if (t == null) {
        return;
      }
      stopping = true;
      changed.signalAll();
    } finally {
      lock.unlock();
    }
    receiver.wake();
    try {
      t.join(TimeUnit.SECONDS.toMillis(30));
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    lock.lock();
    try {
      loop = null;
    } finally {
      lock.unlock();
    }
  }

  /** The contacts changed: the loop subscribes new mailboxes. */
  void contactsChanged() {
    receiver.wake();
  }

  /** How long a connection must have lasted for the back-off to start again from 1 s: 30 s. */
  static final Duration STABLE = Duration.ofSeconds(30);

  private void run() {
    Duration backOff = Duration.ZERO;
    long[] connectedAt = {0};
    while (!stopping) {
      connectedAt[0] = 0;
      try {
        receiver.stream(new MessageReceiver.Hooks() {
          @Override
          public boolean stopping() {
            return stopping;
          }

          @Override
          public void connected() {
            connectedAt[0] = System.nanoTime();
            onConnected.run();
            String carrier = ctx.routes().inUse(ctx.homeServer()).map(BridgeLine::shortForm).orElse(null);
            setConnectivity(Connectivity.online(Optional.ofNullable(carrier)));
          }

          @Override
          public void delivered(Optional<String> established) {
            established.ifPresent(label -> post(l -> l.onContactEstablished(label)));
            arrived();
            onArrival.run();
          }
        });
      } catch (RuntimeException e) {
        if (stopping) {
          break;
        }
        if (connectedAt[0] != 0 && System.nanoTime() - connectedAt[0] >= STABLE.toNanos()) {
          backOff = Duration.ZERO;
        }
        // Jittered from the first try, so that clients cut off together do not come back together.
        backOff = backOff.isZero() ? Duration.ofSeconds(1)
            : backOff.multipliedBy(2).compareTo(FerryClient.MAX_RECONNECT_DELAY) > 0
                ? FerryClient.MAX_RECONNECT_DELAY : backOff.multipliedBy(2);
        long half = backOff.toMillis() / 2;
        Duration wait = Duration.ofMillis(half + ctx.random().nextLong(half + 1));
        String why = e instanceof FerryException ? e.getMessage() : "unexpected error: " + e.getClass().getName();
        if (!(e instanceof FerryException)) {
          log.warn("the receive loop failed; trying again", e);
        }
        setConnectivity(Connectivity.offline(Instant.now(ctx.clock()).plus(wait), why));
        pause(wait);
      }
    }
    setConnectivity(new Connectivity(false, Optional.empty(), Optional.empty(), Optional.empty()));
  }

  /** Waits {@code wait}, or less if the loop is stopped meanwhile. */
  private void pause(Duration wait) {
    long until = System.nanoTime() + wait.toNanos();
    lock.lock();
    try {
      long left;
      while (!stopping && (left = until - System.nanoTime()) > 0) {
        changed.awaitNanos(left);
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      stopping = true;
    } finally {
      lock.unlock();
    }
  }

  private void setConnectivity(Connectivity c) {
    if (!c.equals(connectivity)) {
      connectivity = c;
      post(l -> l.onConnectivityChanged(c));
    }
  }

  /** Something was kept in the local inbox. */
  private void arrived() {
    lock.lock();
    try {
      arrivals++;
      changed.signalAll();
    } finally {
      lock.unlock();
    }
    inboxChanged();
  }

  /** How many deliveries the loop has kept so far; for {@link #awaitArrival}. */
  long arrivals() {
    lock.lock();
    try {
      return arrivals;
    } finally {
      lock.unlock();
    }
  }

  /**
   * Waits until the loop has kept more than {@code seen} deliveries, or {@code timeout} passed.
   *
   * @return whether something arrived
   */
  boolean awaitArrival(long seen, Duration timeout) throws InterruptedException {
    long until = System.nanoTime() + timeout.toNanos();
    lock.lock();
    try {
      long left;
      while (arrivals <= seen && (left = until - System.nanoTime()) > 0) {
        changed.awaitNanos(left);
      }
      return arrivals > seen;
    } finally {
      lock.unlock();
    }
  }

  /** Tells the listeners of {@code event}, in order with everything else. */
  void post(Consumer<FerryListener> event) {
    if (listeners.isEmpty()) {
      return;
    }
    try {
      dispatch.execute(() -> callAll(event));
    } catch (java.util.concurrent.RejectedExecutionException e) {
      // Closed.
    }
  }

  /** Hands over the local inbox to the listeners, if there are any, soon. */
  void inboxChanged() {
    if (listeners.isEmpty() || !handOverQueued.compareAndSet(false, true)) {
      return;
    }
    try {
      dispatch.execute(this::handOver);
    } catch (java.util.concurrent.RejectedExecutionException e) {
      handOverQueued.set(false);
    }
  }

  private void handOver() {
    handOverQueued.set(false);
    if (listeners.isEmpty()) {
      return;
    }
    int n;
    try {
      n = receiver.handOverInbox(new MessageListener() {
        @Override
        public void onMessage(ReceivedMessage message) {
          callAllOrThrow(l -> l.onMessage(message));
        }

        @Override
        public void onDecryptionFailure(DecryptionFailure failure) {
          callAllOrThrow(l -> {
            l.onDecryptionFailure(failure);
            if (failure.kind() == DecryptionFailure.Kind.IDENTITY_CHANGED) {
              failure.newSafetyNumber().ifPresent(n -> l.onIdentityChanged(failure.contactLabel(), n));
            }
          });
        }

        @Override
        public void onSessionRestarted(String contactLabel) {
          callAllOrThrow(l -> l.onSessionRestarted(contactLabel));
        }
      }, HAND_OVER_BATCH);
    } catch (HandOverStopped e) {
      // What is left stays in the local inbox: for the next run if closing, else for the next
      // listener (adding one hands it over) or receive.
      return;
    } catch (ListenerFailed e) {
      // Kept in the inbox (callAll logged it): handed over again after a pause, or sooner
      // with the next arrival. (Closing drops the pause: the inbox waits for the next run.)
      try {
        dispatch.schedule(this::inboxChanged, RETRY_HAND_OVER.toMillis(), TimeUnit.MILLISECONDS);
      } catch (java.util.concurrent.RejectedExecutionException closed) {
        // Closed: it waits in the inbox for the next run.
      }
      return;
    } catch (FerryException e) {
      if (e.reason() != FerryException.Reason.CLOSED) {
        log.warn("could not hand over the local inbox: {}", e.getMessage());
      }
      return;
    }
    if (n == HAND_OVER_BATCH) {
      inboxChanged();
    }
  }

  /** A listener threw: the inbox entry stays, and is handed over again after a pause. */
  private static final class ListenerFailed extends RuntimeException {
    private static final long serialVersionUID = 1L;

    ListenerFailed(Throwable cause) {
      super(cause);
    }
  }

  /**
   * The client is closing, or no listener is registered any more (the last was removed during
   * this hand-over): the inbox entry stays, and nothing is retried.
   */
  private static final class HandOverStopped extends RuntimeException {
    private static final long serialVersionUID = 1L;

    HandOverStopped() {
      super(null, null, false, false);
    }
  }

  /**
   * Hands {@code event} to every listener registered now; throws {@link ListenerFailed} if one
   * threw and {@link HandOverStopped} if the client is closing or no listener is left: in each
   * case the inbox entry must stay.
   */
  private void callAllOrThrow(Consumer<FerryListener> event) {
    List<Registered> now = List.copyOf(listeners);
    if (closing || now.isEmpty()) {
      throw new HandOverStopped();
    }
    Throwable failed = callAll(now, event);
    if (failed != null) {
      throw new ListenerFailed(failed);
    }
  }

  private Throwable callAll(Consumer<FerryListener> event) {
    return callAll(List.copyOf(listeners), event);
  }

  /** Calls each of {@code targets} on its executor, one after another; returns the first failure. */
  private Throwable callAll(List<Registered> targets, Consumer<FerryListener> event) {
    Throwable first = null;
    for (Registered r : targets) {
      try {
        if (r.executor() == null) {
          event.accept(r.listener());
        } else {
          CompletableFuture.runAsync(() -> {
            inListener.set(Boolean.TRUE);
            try {
              event.accept(r.listener());
            } finally {
              inListener.remove();
            }
          }, r.executor()).get();
        }
      } catch (ExecutionException e) {
        first = first == null ? e.getCause() : first;
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        return e;
      } catch (RuntimeException e) {
        first = first == null ? e : first;
      }
    }
    if (first != null) {
      // The class only: the app's exception message may quote a message.
      log.warn("an app listener threw {}; a message or notice it was given is handed over again later",
          first.getClass().getName());
    }
    return first;
  }

  /** Whether the caller is a listener call (on the dispatch thread or the app's executor). */
  boolean onDispatchThread() {
    return Thread.currentThread() == dispatchThread || inListener.get() != null;
  }

  /**
   * For a close from inside a listener: stops the loop, hands nothing more over, and runs
   * {@code finish} on the dispatch thread once the current event is done.
   */
  void closeAfterThisEvent(Runnable finish) {
    closing = true;
    stop();
    dispatch.execute(finish);
    dispatch.shutdown();
  }

  /** Stops the loop and the dispatch thread (events not yet dispatched are dropped). */
  @Override
  public void close() {
    closing = true;
    stop();
    dispatch.shutdown();
    try {
      if (!dispatch.awaitTermination(10, TimeUnit.SECONDS)) {
        dispatch.shutdownNow();
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
