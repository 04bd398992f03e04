package org.ferry.server.internal.admin;

import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.AsynchronousCloseException;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileSystems;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.nio.file.attribute.UserPrincipal;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import jdk.net.ExtendedSocketOptions;
import jdk.net.UnixDomainPrincipal;
import org.ferry.ops.log.OneLineLogs;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The server's local admin channel: a Unix domain socket, {@code DATA/}{@value #SOCKET_NAME},
 * that only the server's own user can use. The socket file is owner-only ({@code rw-------}:
 * connecting needs write permission on it) inside the owner-only data directory, and every
 * connection's peer user ({@code SO_PEERCRED}) must be the server's; others are closed unanswered.
 *
 * <p>Protocol: the client sends one command word and a newline ({@code status}, {@code backup});
 * the server answers one line of JSON and closes. A command that fails answers
 * {@code {"error": "..."}}. A client that does not send its line within 10 s is closed.
 */
public final class AdminChannel implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(AdminChannel.class);

  /** The socket's name in the data directory. */
  public static final String SOCKET_NAME = "admin.sock";
  /** Longest socket path the OS takes ({@code sun_path} less its terminating NUL) on Linux. */
  static final int MAX_PATH_BYTES = 107;
  private static final int MAX_REQUEST = 256;
  private static final ObjectMapper JSON = new ObjectMapper();

  /** Answers one command; the map becomes the JSON answer. */
  @FunctionalInterface
  public interface Command {
    Map<String, Object> run() throws Exception;
  }

  private final Path socket;
  private final ServerSocketChannel server;
  private final Map<String, Command> commands;
  private final UserPrincipal owner;
  private final Thread acceptor;
  private final ExecutorService workers;
  private final ScheduledExecutorService timeouts;
  private volatile boolean closed;

  private AdminChannel(Path socket, ServerSocketChannel server, Map<String, Command> commands, UserPrincipal owner) {
    this.socket = socket;
    this.server = server;
    this.commands = Map.copyOf(commands);
    this.owner = owner;
    AtomicInteger n = new AtomicInteger();
    this.workers = Executors.newFixedThreadPool(2, r -> daemon(r, "ferry-admin-" + n.incrementAndGet()));
    this.timeouts = Executors.newSingleThreadScheduledExecutor(r -> daemon(r, "ferry-admin-timeouts"));
    this.acceptor = daemon(this::acceptLoop, "ferry-admin-accept");
  }

  /**
   * Listens on {@code DATA/admin.sock}. The caller holds the data directory's lock, so a socket
   * file left there is a dead server's and is replaced.
   *
   * @throws IOException if the socket cannot be made, or its path is too long for the OS
   *     (at most 107 bytes: use a shorter data directory path)
   */
  public static AdminChannel start(Path dataDirectory, Map<String, Command> commands) throws IOException {
    Path socket = socketPath(dataDirectory);
    Files.deleteIfExists(socket);
    ServerSocketChannel server = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
    try {
      server.bind(UnixDomainSocketAddress.of(socket));
      // Owner-only at once; until then the owner-only data directory keeps others away.
      Files.setPosixFilePermissions(socket, PosixFilePermissions.fromString("rw-------"));
      UserPrincipal me = FileSystems.getDefault().getUserPrincipalLookupService()
          .lookupPrincipalByName(System.getProperty("user.name"));
      AdminChannel channel = new AdminChannel(socket, server, commands, me);
      channel.acceptor.start();
      return channel;
    } catch (IOException | RuntimeException e) {
      server.close();
      Files.deleteIfExists(socket);
      throw e;
    }
  }

  /**
   * The socket's path in {@code dataDirectory}, absolute.
   *
   * @throws IOException if it is longer than the OS takes
   */
  public static Path socketPath(Path dataDirectory) throws IOException {
    Path socket = dataDirectory.toAbsolutePath().normalize().resolve(SOCKET_NAME);
    int length = socket.toString().getBytes(StandardCharsets.UTF_8).length;
    if (length > MAX_PATH_BYTES) {
      throw new IOException("the admin socket's path " + socket + " is " + length + " bytes long, more than the "
          + MAX_PATH_BYTES + " the OS takes; use a shorter data directory path");
    }
    return socket;
  }

  private void acceptLoop() {
    while (!closed) {
      SocketChannel client;
      try {
        client = server.accept();
      } catch (AsynchronousCloseException e) {
        return;
      } catch (IOException e) {
        if (!closed) {
          log.warn("admin channel stopped accepting: {}", OneLineLogs.describe(e));
        }
        return;
      }
      try {
        workers.execute(() -> serve(client));
      } catch (java.util.concurrent.RejectedExecutionException e) {
        closeQuietly(client);
      }
    }
  }

  private void serve(SocketChannel client) {
    try (client) {
      if (!samePeer(client)) {
        log.warn("admin channel: refused a connection from another user");
        return;
      }
      ScheduledFuture<?> timeout = timeouts.schedule(() -> closeQuietly(client), 10, TimeUnit.SECONDS);
      String command;
      try {
        command = readLine(client);
      } finally {
        timeout.cancel(false);
      }
      Map<String, Object> answer;
      Command c = command == null ? null : commands.get(command);
      if (c == null) {
        answer = Map.of("error", "unknown admin command; this server knows " + String.join(", ", commands.keySet()));
      } else {
        try {
          answer = c.run();
        } catch (Exception e) {
          log.warn("admin command {} failed: {}", command, OneLineLogs.describe(e));
          answer = new LinkedHashMap<>();
          answer.put("error", e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage());
        }
      }
      ByteBuffer out = ByteBuffer.wrap((JSON.writeValueAsString(answer) + "\n").getBytes(StandardCharsets.UTF_8));
      while (out.hasRemaining()) {
        client.write(out);
      }
    } catch (IOException e) {
      // The client went away or timed out; nothing to answer.
    }
  }

  /** Whether the peer runs as the server's user; true where the OS cannot tell (file modes still apply). */
  private boolean samePeer(SocketChannel client) throws IOException {
    try {
      UnixDomainPrincipal peer = client.getOption(ExtendedSocketOptions.SO_PEERCRED);
      return peer.user().equals(owner);
    } catch (UnsupportedOperationException e) {
      return true;
    }
  }

  private static String readLine(SocketChannel client) throws IOException {
    ByteBuffer in = ByteBuffer.allocate(MAX_REQUEST);
    while (in.hasRemaining()) {
      if (client.read(in) < 0) {
        break;
      }
      for (int i = 0; i < in.position(); i++) {
        if (in.get(i) == '\n') {
          return new String(in.array(), 0, i, StandardCharsets.US_ASCII).strip();
        }
      }
    }
    return null;
  }

  private static void closeQuietly(SocketChannel client) {
    try {
      client.close();
    } catch (IOException e) {
      // Closing anyway.
    }
  }

  private static Thread daemon(Runnable r, String name) {
    Thread t = new Thread(r, name);
    t.setDaemon(true);
    return t;
  }

  /** Stops listening and removes the socket file. */
  @Override
  public void close() {
    closed = true;
    try {
      server.close();
    } catch (IOException e) {
      // Closing anyway.
    }
    workers.shutdownNow();
    timeouts.shutdownNow();
    try {
      Files.deleteIfExists(socket);
    } catch (IOException e) {
      log.warn("cannot remove the admin socket: {}", e.getMessage());
    }
  }
}
