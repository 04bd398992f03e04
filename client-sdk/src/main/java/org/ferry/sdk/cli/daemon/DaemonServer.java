package org.ferry.sdk.cli.daemon;

import com.google.gson.JsonElement;
import com.google.gson.JsonNull;
import com.google.gson.JsonObject;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.util.EnumSet;
import java.util.Set;
import java.time.Duration;
import java.util.Comparator;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.Executors;
import java.util.concurrent.Semaphore;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.ferry.sdk.FerryClient;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * JSON-RPC 2.0 over a Unix domain socket ({@code DATA/daemon.sock}, owner-only), one message
 * per line (docs/daemon.md). Each connection's requests run one at a time, in order, on a thread
 * of their own, while its reader keeps reading, so that a caller that goes away is noticed
 * during a long call (a receive). A line over {@link LineChannel#MAX_LINE_BYTES} gets an
 * Invalid Request error and the connection is closed. At most {@link #MAX_CONNECTIONS}
 * connections at once: when they are all taken, the longest idle one (no call in progress, no
 * subscription, no acknowledgement awaited) is closed to make room, and if none is idle the new
 * one gets error {@link #BUSY} and is closed. Idle connections are closed after
 * {@link #IDLE_TIMEOUT} anyway.
 *
 * <p>The caller holds the data directory's lock: a socket file found there is a dead daemon's
 * and is replaced.
 */
public final class DaemonServer implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(DaemonServer.class);

  /** Connections served at once. */
  static final int MAX_CONNECTIONS = 32;

  /**
   * How long one line may take to write before the connection is closed: a caller that stops
   * reading must not hold up the client's event thread (subscriptions) or a call's thread.
   */
  static final Duration WRITE_TIMEOUT = Duration.ofSeconds(10);

  /**
   * How long a connection may sit idle (no call in progress, no subscription, no acknowledgement
   * awaited) before it is closed.
   */
  static final Duration IDLE_TIMEOUT = Duration.ofSeconds(60);

  /**
   * How long a message (or a {@code cli} call's output) handed to a caller waits for the caller's
   * {@code ack}: without one in time it stays in the local inbox, and the connection is closed.
   */
  static final Duration ACK_TIMEOUT = Duration.ofSeconds(30);

  /** The JSON-RPC error code for a connection refused because every slot is busy. */
  static final int BUSY = DaemonCli.BUSY;

  /** The message of error {@link #BUSY}. */
  static final String BUSY_MESSAGE = "daemon busy: too many connections";

  /** Refused connections are logged at most once per this period. */
  private static final Duration REFUSAL_LOG_PERIOD = Duration.ofMinutes(1);

  private final Path socket;
  private final ServerSocketChannel server;
  private final DaemonMethods methods;
  private final Semaphore slots = new Semaphore(MAX_CONNECTIONS);
  private final Set<Connection> open = ConcurrentHashMap.newKeySet();
  private final ExecutorService threads = Executors.newCachedThreadPool(named("ferry-daemon"));
  private final ScheduledExecutorService timer = Executors.newSingleThreadScheduledExecutor(named("ferry-daemon-timer"));
  private volatile boolean closed;
  private final AtomicLong refusedSinceLog = new AtomicLong();
  private long lastRefusalLog = System.nanoTime() - REFUSAL_LOG_PERIOD.toNanos();

  private DaemonServer(Path socket, ServerSocketChannel server, FerryClient client, Optional<String> proxy) {
    this.socket = socket;
    this.server = server;
    this.methods = new DaemonMethods(client, proxy);
    long sweep = IDLE_TIMEOUT.toMillis() / 6;
    timer.scheduleWithFixedDelay(this::closeIdle, sweep, sweep, TimeUnit.MILLISECONDS);
  }

  /**
   * Serves {@code client} on {@code data}'s socket until {@link #close}.
   *
   * @param proxy the proxy {@code client} was built with ({@code socks5://} or {@code http://}
   *     URI), if any: a command line naming another one is refused
   * @throws IllegalArgumentException if the socket's path is too long for a Unix socket (107
   *     bytes)
   * @throws IOException if the socket cannot be made
   */
  public static DaemonServer start(Path data, FerryClient client, Optional<String> proxy) throws IOException {
    Path socket = DaemonCli.socketOf(data);
    DaemonCli.tooLong(socket).ifPresent(why -> {
      throw new IllegalArgumentException(why);
    });
    Files.deleteIfExists(socket);
    ServerSocketChannel channel = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
    try {
      channel.bind(UnixDomainSocketAddress.of(socket));
      // The data directory is owner-only already, so nobody else could reach it meanwhile.
      Files.setPosixFilePermissions(socket, EnumSet.of(PosixFilePermission.OWNER_READ, PosixFilePermission.OWNER_WRITE));
    } catch (IOException | RuntimeException e) {
      channel.close();
      Files.deleteIfExists(socket);
      throw e;
    }
    DaemonServer d = new DaemonServer(socket, channel, client, proxy.filter(p -> !p.isBlank()));
    Thread acceptor = new Thread(d::acceptLoop, "ferry-daemon-accept");
    acceptor.setDaemon(true);
    acceptor.start();
    return d;
  }

  /** The socket served. */
  public Path socket() {
    return socket;
  }

  private void acceptLoop() {
    while (!closed) {
      SocketChannel ch;
      try {
        ch = server.accept();
      } catch (ClosedChannelException e) {
        return;
      } catch (IOException e) {
        if (!closed) {
          log.warn("daemon: could not accept a connection: {}", e.getMessage());
        }
        continue;
      }
      if (!slots.tryAcquire() && !makeRoom()) {
        refuse(ch);
        continue;
      }
      Connection c = new Connection(ch);
      open.add(c);
      threads.execute(() -> {
        try {
          c.serve();
        } finally {
          open.remove(c);
          slots.release();
        }
      });
    }
  }

  /**
   * Closes the longest idle connection, if there is one, and takes its slot; false if every
   * connection is busy.
   */
  private boolean makeRoom() {
    Optional<Connection> idlest = open.stream().filter(Connection::idle)
        .min(Comparator.comparingLong(c -> c.lastUsed));
    if (idlest.isEmpty()) {
      return false;
    }
    if (!idlest.get().closeIfIdle(true)) {
      return false; // a call came meanwhile: refused this time, not worth a second search
    }
    try {
      // Its slot comes back once its thread has finished (at once: it had no call).
      return slots.tryAcquire(5, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return false;
    }
  }

  /** Tells a connection over the cap that the daemon is busy, and closes it. */
  private void refuse(SocketChannel ch) {
    try (LineChannel lines = new LineChannel(ch)) {
      // A new connection's send buffer is empty: one short line does not block.
      lines.writeLine(JsonRpc.toLine(JsonRpc.error(JsonNull.INSTANCE, new JsonRpc.Failure(BUSY, BUSY_MESSAGE))));
    } catch (IOException e) {
      // Gone already.
    }
    long refused = refusedSinceLog.incrementAndGet();
    long now = System.nanoTime();
    if (now - lastRefusalLog >= REFUSAL_LOG_PERIOD.toNanos()) {
      lastRefusalLog = now;
      refusedSinceLog.set(0);
      log.warn("daemon: {} connections busy; refused {} new connection(s) (logged at most once a minute)",
          MAX_CONNECTIONS, refused);
    }
  }

  /** Closes connections idle for {@link #IDLE_TIMEOUT}. */
  private void closeIdle() {
    long now = System.nanoTime();
    for (Connection c : open) {
      if (now - c.lastUsed >= IDLE_TIMEOUT.toNanos()) {
        c.closeIfIdle(false);
      }
    }
  }

  /** Stops serving: closes the socket and its connections and removes the socket file. Idempotent. */
  @Override
  public void close() {
    if (closed) {
      return;
    }
    closed = true;
    try {
      server.close();
    } catch (IOException e) {
      // Closed either way.
    }
    try {
      Files.deleteIfExists(socket);
    } catch (IOException e) {
      log.warn("daemon: could not remove {}: {}", socket, e.getMessage());
    }
    open.forEach(Connection::close);
    threads.shutdownNow();
    timer.shutdownNow();
    try {
      threads.awaitTermination(5, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  private static void close(SocketChannel ch) {
    try {
      ch.close();
    } catch (IOException e) {
      // Closed either way.
    }
  }

  private static ThreadFactory named(String prefix) {
    AtomicInteger n = new AtomicInteger();
    return r -> {
      Thread t = new Thread(r, prefix + "-" + n.incrementAndGet());
      t.setDaemon(true);
      return t;
    };
  }

  /** One client's connection: this thread reads; calls run in order on {@link #calls}. */
  private final class Connection implements DaemonMethods.Call {
    private final LineChannel lines;
    private final ExecutorService calls = Executors.newSingleThreadExecutor(named("ferry-daemon-call"));
    private volatile boolean gone;
    private Runnable unsubscribe;
    /** Calls queued or running. */
    private final AtomicInteger inCall = new AtomicInteger();
    /** When a line was last read or a call ended ({@link System#nanoTime}). */
    private volatile long lastUsed = System.nanoTime();
    /** Closed by {@link #closeIfIdle}: no further call is taken. Guarded by this. */
    private boolean closedIdle;
    /** Whether anything was written to the caller. */
    private volatile boolean wrote;
    private final AtomicLong nextAck = new AtomicLong();
    /** Acknowledgements awaited, by ackId: completed with the caller's ok, or false. */
    private final Map<Long, CompletableFuture<Boolean>> acks = new ConcurrentHashMap<>();

    Connection(SocketChannel ch) {
      this.lines = new LineChannel(ch);
    }

    void serve() {
      try {
        String line;
        while ((line = readLine()) != null) {
          request(line);
        }
      } catch (LineChannel.LineTooLong e) {
        answer(JsonRpc.error(JsonNull.INSTANCE, new JsonRpc.Failure(JsonRpc.INVALID_REQUEST,
            "Invalid Request: over " + LineChannel.MAX_LINE_BYTES + " bytes; closing the connection")));
      } catch (IOException e) {
        // The caller went away.
      } finally {
        gone = true;
        failAcks();
        calls.shutdown();
        try {
          // Calls already taken finish (a send under way completes or fails whole); a
          // receive sees `gone` and ends within a second.
          calls.awaitTermination(1, TimeUnit.MINUTES);
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
        }
        close();
      }
    }

    /** The next line, answering lines that are not UTF-8 as parse errors. */
    private String readLine() throws IOException {
      while (true) {
        try {
          String line = lines.readLine();
          lastUsed = System.nanoTime();
          return line;
        } catch (LineChannel.NotUtf8 e) {
          JsonObject error = JsonRpc.error(JsonNull.INSTANCE, new JsonRpc.Failure(JsonRpc.PARSE_ERROR, "Parse error: not UTF-8"));
          enqueue(() -> answer(error));
        }
      }
    }

    /** Runs {@code task} after the calls before it, counting it as a call in progress. */
    private void enqueue(Runnable task) {
      synchronized (this) {
        // With closeIfIdle: a call is either counted before the connection is judged idle, or
        // dropped because it was closed as idle (its caller then sees the connection close).
        if (closedIdle) {
          return;
        }
        inCall.incrementAndGet();
      }
      calls.execute(() -> {
        try {
          task.run();
        } finally {
          lastUsed = System.nanoTime();
          inCall.decrementAndGet();
        }
      });
    }

    /** No call in progress, no subscription, no acknowledgement awaited. */
    synchronized boolean idle() {
      return unsubscribe == null && inCall.get() == 0 && acks.isEmpty() && !closedIdle;
    }

    /**
     * Closes the connection if it is idle; whether it did. A connection that never had an answer
     * or notification written (its send buffer is empty, so this cannot block) is told first,
     * with error {@link #BUSY} if {@code forRoom}: a caller that had just connected learns that
     * nothing was done. Others are closed without a word: a caller that stopped reading could
     * block the write.
     */
    boolean closeIfIdle(boolean forRoom) {
      synchronized (this) {
        if (!idle()) {
          return false;
        }
        closedIdle = true;
      }
      if (forRoom && !wrote) {
        answer(JsonRpc.error(JsonNull.INSTANCE, new JsonRpc.Failure(BUSY, BUSY_MESSAGE)));
      }
      close();
      return true;
    }

    private void failAcks() {
      acks.values().forEach(f -> f.complete(false));
    }

    /** An {@code ack} notification (or request): handled at once, not in turn with the calls. */
    private void ack(JsonElement id, JsonObject params) {
      JsonElement ackId = params.get("ackId");
      JsonElement ok = params.get("ok");
      if (ackId == null || !ackId.isJsonPrimitive() || !ackId.getAsJsonPrimitive().isNumber()
          || ok != null && !(ok.isJsonPrimitive() && ok.getAsJsonPrimitive().isBoolean())) {
        if (!id.isJsonNull()) {
          answer(JsonRpc.error(id, new JsonRpc.Failure(JsonRpc.INVALID_PARAMS,
              "Invalid params: 'ackId' must be a number and 'ok' a boolean")));
        }
        return;
      }
      CompletableFuture<Boolean> awaited = acks.get(ackId.getAsLong());
      if (awaited != null) {
        awaited.complete(ok == null || ok.getAsBoolean());
      }
      if (!id.isJsonNull()) {
        answer(JsonRpc.result(id, new JsonObject()));
      }
    }

    private void request(String line) {
      JsonElement id = JsonNull.INSTANCE;
      try {
        if (line.isBlank()) {
          return;
        }
        JsonElement parsed = JsonRpc.parse(line);
        if (!parsed.isJsonObject()) {
          throw new JsonRpc.Failure(JsonRpc.INVALID_REQUEST, parsed.isJsonArray()
              ? "Invalid Request: batches are not supported; send one request per line"
              : "Invalid Request: not an object");
        }
        JsonObject request = parsed.getAsJsonObject();
        JsonElement rawId = request.get("id");
        if (rawId != null && !(rawId.isJsonNull() || rawId.isJsonPrimitive() && !rawId.getAsJsonPrimitive().isBoolean())) {
          throw new JsonRpc.Failure(JsonRpc.INVALID_REQUEST, "Invalid Request: id must be a string or a number");
        }
        id = rawId == null ? JsonNull.INSTANCE : rawId;
        JsonElement version = request.get("jsonrpc");
        JsonElement method = request.get("method");
        if (version == null || !version.isJsonPrimitive() || !"2.0".equals(version.getAsString())) {
          throw new JsonRpc.Failure(JsonRpc.INVALID_REQUEST, "Invalid Request: jsonrpc must be \"2.0\"");
        }
        if (method == null || !method.isJsonPrimitive() || !method.getAsJsonPrimitive().isString()) {
          throw new JsonRpc.Failure(JsonRpc.INVALID_REQUEST, "Invalid Request: method must be a string");
        }
        JsonElement params = request.has("params") ? request.get("params") : new JsonObject();
        if (!params.isJsonObject()) {
          throw new JsonRpc.Failure(JsonRpc.INVALID_PARAMS, "Invalid params: params must be an object (by name)");
        }
        boolean notification = rawId == null;
        JsonElement callId = id;
        if ("ack".equals(method.getAsString())) {
          ack(callId, params.getAsJsonObject()); // the call it acknowledges is still running
          return;
        }
        enqueue(() -> run(method.getAsString(), params.getAsJsonObject(), callId, notification));
      } catch (JsonRpc.Failure f) {
        // In turn with the calls before it, so that answers come in the order asked.
        JsonObject error = JsonRpc.error(id, f);
        enqueue(() -> answer(error));
      }
    }

    private void run(String method, JsonObject params, JsonElement id, boolean notification) {
      JsonObject answer;
      try {
        answer = JsonRpc.result(id, methods.call(method, params, this));
      } catch (JsonRpc.Failure f) {
        answer = JsonRpc.error(id, f);
      } catch (RuntimeException e) {
        if (callerGone()) {
          return; // a write to the departed caller failed; nobody to answer, nothing to report
        }
        // Logged without the request: it may hold message text or an invitation.
        log.warn("daemon: method {} failed", method.length() <= 64 ? method : "(long name)", e);
        answer = JsonRpc.error(id, new JsonRpc.Failure(JsonRpc.INTERNAL_ERROR, "Internal error"));
      }
      if (!notification) {
        answer(answer);
      }
    }

    private void answer(JsonObject message) {
      try {
        write(JsonRpc.toLine(message));
      } catch (IOException e) {
        gone = true;
      }
    }

    private void write(String line) throws IOException {
      wrote = true;
      ScheduledFuture<?> stuck = timer.schedule(this::close, WRITE_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
      try {
        lines.writeLine(line);
      } finally {
        stuck.cancel(false);
      }
    }

    @Override
    public boolean callerGone() {
      return gone || closed;
    }

    @Override
    public void notify(String method, JsonObject params) throws IOException {
      if (callerGone()) {
        throw new ClosedChannelException();
      }
      try {
        write(JsonRpc.toLine(JsonRpc.notification(method, params)));
      } catch (IOException e) {
        gone = true;
        throw e;
      }
    }

    @Override
    public void hand(String method, JsonObject params) throws IOException {
      long id = nextAck.incrementAndGet();
      CompletableFuture<Boolean> awaited = new CompletableFuture<>();
      acks.put(id, awaited);
      try {
        if (callerGone()) {
          throw new ClosedChannelException();
        }
        params.addProperty("ackId", id);
        notify(method, params);
        boolean ok;
        try {
          ok = awaited.get(ACK_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
        } catch (TimeoutException e) {
          // Too slow: the caller may still show it, but it stays here, and the caller is let go.
          close();
          throw new IOException("no acknowledgement within " + ACK_TIMEOUT.toSeconds() + " s");
        } catch (ExecutionException e) {
          throw new IOException("no acknowledgement", e);
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
          throw new java.io.InterruptedIOException("the daemon is stopping");
        }
        if (!ok) {
          throw new IOException(callerGone() ? "the caller went away" : "the caller could not take it");
        }
      } finally {
        acks.remove(id);
      }
    }

    @Override
    public synchronized boolean subscribe(org.ferry.sdk.FerryListener listener, Runnable onClose) {
      if (unsubscribe != null) {
        return false;
      }
      unsubscribe = onClose;
      return true;
    }

    @Override
    public boolean unsubscribe() {
      Runnable r;
      synchronized (this) {
        r = unsubscribe;
        unsubscribe = null;
      }
      if (r != null) {
        r.run();
      }
      return r != null;
    }

    void close() {
      gone = true;
      failAcks();
      unsubscribe();
      lines.close();
    }
  }
}
