package org.ferry.sdk.cli.daemon;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStreamWriter;
import java.io.PrintWriter;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Base64;
import java.util.List;
import java.util.Optional;
import java.util.OptionalInt;
import java.nio.channels.SocketChannel;

/**
 * The command line's side of the daemon: runs a {@code ferry client} command through the daemon
 * serving its data directory, when one answers. The daemon parses and runs the command with
 * the code that runs it in-process, so output and exit codes are the same.
 *
 * <p>{@link #main} is the launcher's fast path: a JVM with only this class, {@link JsonRpc},
 * {@link LineChannel} and Gson loaded (no SDK, gRPC or RocksDB). It exits
 * {@link #NO_DAEMON} when no daemon answers, and the launcher then starts the full command line.
 * Nothing here may load SDK classes.
 */
public final class DaemonCli {
  /** The socket's name in the data directory. */
  public static final String SOCKET_NAME = "daemon.sock";

  /** The data directory when {@code --data} is not given. */
  public static final String DEFAULT_DATA = "./ferry-data/client";

  /**
   * The longest socket path the kernel takes: {@code sun_path} is 108 bytes on Linux, with a
   * terminating NUL.
   */
  static final int MAX_SOCKET_PATH_BYTES = 107;

  /** Exit code of {@link #main} when no daemon answers (nothing was read or printed). */
  public static final int NO_DAEMON = 120;

  /** Standard input passed to the daemon for {@code -} arguments: at most 512 KiB (a request is at most 1 MiB). */
  static final int MAX_STDIN_BYTES = 512 * 1024;

  private DaemonCli() {}

  /** Where the daemon for {@code data} listens. */
  public static Path socketOf(Path data) {
    return data.toAbsolutePath().normalize().resolve(SOCKET_NAME);
  }

  /** Why {@code socket} cannot be a Unix socket's path, if it cannot. */
  static Optional<String> tooLong(Path socket) {
    int bytes = socket.toString().getBytes(StandardCharsets.UTF_8).length;
    return bytes <= MAX_SOCKET_PATH_BYTES ? Optional.empty()
        : Optional.of("the daemon's socket path " + socket + " is " + bytes + " bytes long; Unix sockets allow "
            + MAX_SOCKET_PATH_BYTES + ": use a data directory with a shorter path");
  }

  public static void main(String[] args) {
    PrintWriter out = utf8(FileDescriptor.out);
    PrintWriter err = utf8(FileDescriptor.err);
    OptionalInt exit = tryRun(args, System.in, out, err);
    out.flush();
    err.flush();
    System.exit(exit.orElse(NO_DAEMON));
  }

  private static PrintWriter utf8(FileDescriptor fd) {
    return new PrintWriter(new OutputStreamWriter(new FileOutputStream(fd), StandardCharsets.UTF_8));
  }

  /**
   * Runs {@code args} (a {@code ferry client} command line) through the daemon for its data
   * directory.
   *
   * @return the command's exit code; empty if no daemon answers, and then nothing was read from
   *     {@code in} or written
   */
  public static OptionalInt tryRun(String[] args, InputStream in, PrintWriter out, PrintWriter err) {
    Path socket = socketOf(Path.of(dataArgument(args)));
    if (tooLong(socket).isPresent() || !Files.exists(socket)) {
      return OptionalInt.empty();
    }
    SocketChannel channel;
    try {
      channel = SocketChannel.open(StandardProtocolFamily.UNIX);
      try {
        channel.connect(UnixDomainSocketAddress.of(socket));
      } catch (IOException e) {
        channel.close();
        return OptionalInt.empty(); // a socket left by a daemon that was killed
      }
    } catch (IOException e) {
      return OptionalInt.empty();
    }
    try (LineChannel lines = new LineChannel(channel)) {
      JsonObject params = new JsonObject();
      JsonArray argv = new JsonArray();
      for (String a : args) {
        argv.add(a);
      }
      params.add("args", argv);
      params.addProperty("cwd", Path.of("").toAbsolutePath().toString());
      String proxyEnv = System.getenv("FERRY_PROXY");
      if (proxyEnv != null) {
        params.addProperty("proxyEnv", proxyEnv); // the daemon refuses one that is not its own
      }
      if (List.of(args).contains("-")) {
        byte[] stdin = in.readNBytes(MAX_STDIN_BYTES + 1);
        if (stdin.length > MAX_STDIN_BYTES) {
          err.println("ferry client: standard input is over " + MAX_STDIN_BYTES / 1024 + " KiB, more than the "
              + "daemon takes in one command; send it in parts, or with --file");
          return OptionalInt.of(2);
        }
        params.addProperty("stdin", Base64.getEncoder().encodeToString(stdin));
      }
      try {
        lines.writeLine(JsonRpc.toLine(JsonRpc.request(1, "cli", params)));
      } catch (IOException e) {
        // A daemon with every connection busy says so and closes at once: read why.
        String refusal = lines.readLine();
        if (refusal == null) {
          throw e;
        }
        return OptionalInt.of(answer(JsonRpc.parse(refusal).getAsJsonObject(), socket, err));
      }
      return OptionalInt.of(relay(lines, socket, out, err));
    } catch (IOException e) {
      err.println("ferry client: lost the daemon at " + socket + " during the command (" + e.getMessage()
          + "); it may or may not have been carried out");
      return OptionalInt.of(1);
    } catch (JsonRpc.Failure | RuntimeException e) {
      err.println("ferry client: the daemon at " + socket + " answered something unexpected; is it another "
          + "version of Ferry?");
      return OptionalInt.of(1);
    }
  }

  /**
   * Copies the daemon's output notifications to out and err until its answer, acknowledging
   * each once it is written and flushed (with {@code "ok": false} if that failed: the daemon
   * then keeps a message it was handing over); the exit code.
   */
  private static int relay(LineChannel lines, Path socket, PrintWriter out, PrintWriter err)
      throws IOException, JsonRpc.Failure {
    while (true) {
      String line = lines.readLine();
      if (line == null) {
        err.println("ferry client: the daemon at " + socket + " stopped during the command; it may or may "
            + "not have been carried out");
        return 1;
      }
      JsonObject message = JsonRpc.parse(line).getAsJsonObject();
      if (message.has("method")) {
        JsonObject params = message.getAsJsonObject("params");
        PrintWriter to = "err".equals(params.get("stream").getAsString()) ? err : out;
        to.print(params.get("text").getAsString());
        to.flush();
        if (params.has("ackId")) {
          JsonObject ack = new JsonObject();
          ack.add("ackId", params.get("ackId"));
          ack.addProperty("ok", !to.checkError());
          lines.writeLine(JsonRpc.toLine(JsonRpc.notification("ack", ack)));
          continue;
        }
        if (out.checkError()) {
          // The reader is gone or the disk is full: end the command (the daemon sees the
          // connection close and stops handing out messages).
          err.println("ferry client: could not write the output (is the disk full, or the reader gone?)");
          return 1;
        }
        continue;
      }
      return answer(message, socket, err);
    }
  }

  /** The exit code the daemon's answer to the {@code cli} call gives. */
  private static int answer(JsonObject message, Path socket, PrintWriter err) {
    JsonElement error = message.get("error");
    if (error != null && error.isJsonObject()) {
      JsonObject e = error.getAsJsonObject();
      if (e.has("code") && e.get("code").getAsInt() == BUSY) {
        err.println("ferry client: the daemon at " + socket + " is busy (too many connections); nothing was "
            + "done: try again later");
      } else {
        err.println("ferry client: " + e.get("message").getAsString());
      }
      return 1;
    }
    return message.getAsJsonObject("result").get("exit").getAsInt();
  }

  /** The daemon's JSON-RPC error code for a connection refused because all are busy. */
  static final int BUSY = -32000;

  /** The {@code --data} argument (as picocli reads it), or the default. */
  static String dataArgument(String[] args) {
    for (int i = 0; i < args.length; i++) {
      if ("--".equals(args[i])) {
        break;
      }
      if ("--data".equals(args[i]) && i + 1 < args.length) {
        return args[i + 1];
      }
      if (args[i].startsWith("--data=")) {
        return args[i].substring("--data=".length());
      }
    }
    return DEFAULT_DATA;
  }
}
