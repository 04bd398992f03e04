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
import java.util.concurrent.ConcurrentHashMap;
import java.time.Duration;
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
 * connections at once; more are closed at once.
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

  private final Path socket;
  private final ServerSocketChannel server;
  private final DaemonMethods methods;
  private final Semaphore slots = new Semaphore(MAX_CONNECTIONS);
  private final Set<Connection> open = ConcurrentHashMap.newKeySet();
  private final ExecutorService threads = Executors.newCachedThreadPool(named("ferry-daemon"));
  private final ScheduledExecutorService timer = Executors.newSingleThreadScheduledExecutor(named("ferry-daemon-timer"));
  private volatile boolean closed;

  private DaemonServer(Path socket, ServerSocketChannel server, FerryClient client) {
    this.socket = socket;
    this.server = server;
    this.methods = new DaemonMethods(client);
  }

  /**
   * Serves {@code client} on {@code data}'s socket until {@link #close}.
   *
   * @throws IllegalArgumentException if the socket's path is too long for a Unix socket (107
   *     bytes)
   * @throws IOException if the socket cannot be made
   */
  public static DaemonServer start(Path data, FerryClient client) throws IOException {
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
    DaemonServer d = new DaemonServer(socket, channel, client);
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
      if (!slots.tryAcquire()) {
        log.warn("daemon: {} connections open already; closing a new one", MAX_CONNECTIONS);
        close(ch);
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
          return lines.readLine();
        } catch (LineChannel.NotUtf8 e) {
          JsonObject error = JsonRpc.error(JsonNull.INSTANCE, new JsonRpc.Failure(JsonRpc.PARSE_ERROR, "Parse error: not UTF-8"));
          calls.execute(() -> answer(error));
        }
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
        calls.execute(() -> run(method.getAsString(), params.getAsJsonObject(), callId, notification));
      } catch (JsonRpc.Failure f) {
        // In turn with the calls before it, so that answers come in the order asked.
        JsonObject error = JsonRpc.error(id, f);
        calls.execute(() -> answer(error));
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
      unsubscribe();
      lines.close();
    }
  }
}
