package org.ferry.server.internal.admin;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.net.ConnectException;
import java.net.SocketException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.AccessDeniedException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Optional;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;

/** The command-line side of {@link AdminChannel}. */
public final class AdminClient {
  private static final ObjectMapper JSON = new ObjectMapper();

  private AdminClient() {}

  /** No server answers on the data directory's admin socket. */
  public static final class NotRunningException extends IOException {
    private static final long serialVersionUID = 1L;

    NotRunningException(String message) {
      super(message);
    }
  }

  /**
   * The server closes a connection from any other user unanswered (SO_PEERCRED): say so before
   * trying, rather than report a reset connection.
   */
  private static void refuseOtherUser(Path socket) throws IOException {
    try {
      int owner = (Integer) Files.getAttribute(socket, "unix:uid", LinkOption.NOFOLLOW_LINKS);
      int self = (Integer) Files.getAttribute(Path.of("/proc/self"), "unix:uid");
      if (owner != self) {
        throw new AccessDeniedException(socket.toString(), null,
            "the server runs as another user (uid " + owner + "): run this as that user (as uid " + self
                + ", the server would not answer)");
      }
    } catch (UnsupportedOperationException | IllegalArgumentException e) {
      // No unix attributes here: the server's own check answers.
    }
  }

  /**
   * Sends {@code command} to the server of {@code dataDirectory} and returns its JSON answer.
   *
   * @param timeout how long to wait for the answer; {@code Optional.empty()} waits as long as it takes
   * @throws NotRunningException if no server listens there (no socket, or nobody behind it)
   * @throws IOException if this user may not use the socket, the answer does not come in time,
   *     or the server answered with an error (its message)
   */
  public static JsonNode call(Path dataDirectory, String command, Optional<Duration> timeout) throws IOException {
    Path socket = AdminChannel.socketPath(dataDirectory);
    if (!Files.exists(socket, LinkOption.NOFOLLOW_LINKS)) {
      if (!Files.isDirectory(dataDirectory)) {
        throw new NotRunningException("no Ferry server data in " + dataDirectory + " (no such directory)");
      }
      if (!Files.isReadable(dataDirectory)) {
        throw new AccessDeniedException(dataDirectory.toString(), null,
            "cannot look into it: run this as the server's user");
      }
      throw new NotRunningException("no Ferry server is running on " + dataDirectory);
    }
    refuseOtherUser(socket);
    ScheduledExecutorService timer = Executors.newSingleThreadScheduledExecutor(r -> {
      Thread t = new Thread(r, "ferry-admin-timeout");
      t.setDaemon(true);
      return t;
    });
    try (SocketChannel channel = SocketChannel.open(StandardProtocolFamily.UNIX)) {
      try {
        channel.connect(UnixDomainSocketAddress.of(socket));
      } catch (ConnectException e) {
        throw new NotRunningException("no Ferry server is running on " + dataDirectory
            + " (its admin socket is left from an earlier run)");
      } catch (SocketException e) {
        if (String.valueOf(e.getMessage()).contains("ermission denied")) {
          throw new AccessDeniedException(socket.toString(), null,
              "only the server's user may use its admin channel: run this as that user");
        }
        throw e;
      }
      boolean[] timedOut = {false};
      ScheduledFuture<?> deadline = timeout.map(t -> timer.schedule(() -> {
        timedOut[0] = true;
        try {
          channel.close();
        } catch (IOException e) {
          // Closing anyway.
        }
      }, t.toMillis(), TimeUnit.MILLISECONDS)).orElse(null);
      try {
        ByteBuffer out = ByteBuffer.wrap((command + "\n").getBytes(StandardCharsets.US_ASCII));
        while (out.hasRemaining()) {
          channel.write(out);
        }
        ByteArrayOutputStream answer = new ByteArrayOutputStream();
        ByteBuffer in = ByteBuffer.allocate(8192);
        while (channel.read(in) >= 0) {
          answer.write(in.array(), 0, in.position());
          in.clear();
        }
        if (answer.size() == 0) {
          throw new IOException("the server closed its admin channel without answering"
              + " (is another user's process on " + dataDirectory + "?)");
        }
        JsonNode node = JSON.readTree(answer.toString(StandardCharsets.UTF_8));
        if (node.has("error")) {
          throw new IOException(node.get("error").asText());
        }
        return node;
      } catch (IOException e) {
        if (timedOut[0]) {
          throw new IOException("the server did not answer within " + timeout.get().toSeconds() + " s", e);
        }
        throw e;
      } finally {
        if (deadline != null) {
          deadline.cancel(false);
        }
      }
    } finally {
      timer.shutdownNow();
    }
  }
}
