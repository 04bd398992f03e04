package org.ferry.proto;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * A pluggable transport (such as {@code obfs4proxy}) run in managed mode, per the Tor
 * pluggable-transport spec, version 1: started with TOR_PT_* variables, it reports its methods
 * on stdout ({@code SMETHOD} for servers, {@code CMETHOD} for clients) and ends when its stdin
 * closes. Its later output is read and dropped: it may name addresses, and is not ours to log.
 * Shared by the relay (server side) and the SDK (client side).
 */
public final class ManagedTransport implements AutoCloseable {
  private static final long START_SECONDS = 20;

  private final Process process;
  private final List<String> method;

  private ManagedTransport(Process process, List<String> method) {
    this.process = process;
    this.method = List.copyOf(method);
  }

  /**
   * Starts {@code executable} and waits for its method line for {@code transport}.
   *
   * @param server true for a server transport (SMETHOD), false for a client one (CMETHOD)
   * @param env the TOR_PT_* variables beyond the version, state location and stdin watch
   * @throws NotInstalledException if {@code executable} is not found
   * @throws IOException if it cannot be run, reports an error, or offers no such method; the
   *     message says which
   */
  public static ManagedTransport start(String executable, Path stateDir, boolean server, String transport,
      Map<String, String> env) throws IOException {
    Files.createDirectories(stateDir);
    ProcessBuilder pb = new ProcessBuilder(executable);
    pb.environment().put("TOR_PT_MANAGED_TRANSPORT_VER", "1");
    pb.environment().put("TOR_PT_STATE_LOCATION", stateDir.toAbsolutePath().toString());
    pb.environment().put("TOR_PT_EXIT_ON_STDIN_CLOSE", "1");
    pb.environment().putAll(env);
    pb.redirectErrorStream(true);
    Process process;
    try {
      process = pb.start();
    } catch (IOException e) {
      if (!isInstalled(executable)) {
        throw new NotInstalledException(executable + " is not installed (not found"
            + (executable.contains("/") ? "" : " on the PATH") + ")", e);
      }
      throw new IOException("cannot run " + executable + ": " + e.getMessage(), e);
    }
    String word = server ? "SMETHOD" : "CMETHOD";
    CompletableFuture<List<String>> found = CompletableFuture.supplyAsync(() -> readMethod(process, word, transport));
    try {
      return new ManagedTransport(process, found.get(START_SECONDS, TimeUnit.SECONDS));
    } catch (ExecutionException e) {
      process.destroyForcibly();
      throw new IOException(e.getCause().getMessage(), e.getCause());
    } catch (TimeoutException e) {
      process.destroyForcibly();
      throw new IOException(executable + " did not start within " + START_SECONDS + " s");
    } catch (InterruptedException e) {
      process.destroyForcibly();
      Thread.currentThread().interrupt();
      throw new IOException("interrupted while starting " + executable, e);
    }
  }

  /**
   * A client transport's per-connection arguments as its SOCKS5 username and password, as the
   * pluggable-transport spec (pt-spec.txt, version 1, section 3.5) encodes them: {@code k=v}
   * pairs joined by {@code ;}, with {@code \\}, {@code ;} and {@code =} in keys and values
   * escaped by a backslash, so that no value can add arguments of its own. The first 255 bytes go
   * in the username and the rest in the password, which is one NUL byte if nothing is left.
   *
   * @return {@code [username, password]}
   * @throws IllegalArgumentException if a key is empty, a key or value holds anything but
   *     printable ASCII, or the whole is over 510 bytes (SOCKS5 fields are 255 bytes, RFC 1929)
   */
  public static List<String> socksArguments(Map<String, String> arguments) {
    StringBuilder b = new StringBuilder();
    arguments.forEach((k, v) -> {
      if (k.isEmpty() || !(k + v).chars().allMatch(c -> c >= ' ' && c <= '~')) {
        throw new IllegalArgumentException("transport argument '" + k + "' is empty or not printable ASCII");
      }
      b.append(b.length() == 0 ? "" : ";").append(escapeArgument(k)).append('=').append(escapeArgument(v));
    });
    String all = b.toString();
    if (all.length() > 510) {
      throw new IllegalArgumentException("transport arguments are longer than SOCKS5 allows: " + all.length() + " bytes");
    }
    return all.length() <= 255 ? List.of(all, "\0") : List.of(all.substring(0, 255), all.substring(255));
  }

  private static String escapeArgument(String s) {
    StringBuilder b = new StringBuilder(s.length());
    for (char c : s.toCharArray()) {
      if (c == '\\' || c == ';' || c == '=') {
        b.append('\\');
      }
      b.append(c);
    }
    return b.toString();
  }

  /** The program to start was not found: the one case where installing it is the answer. */
  public static final class NotInstalledException extends IOException {
    private static final long serialVersionUID = 1L;

    NotInstalledException(String message, Throwable cause) {
      super(message, cause);
    }
  }

  /** Whether {@code executable} exists: as a path if it has a '/', else in a directory of the PATH. */
  static boolean isInstalled(String executable) {
    if (executable.contains("/")) {
      return Files.exists(Path.of(executable));
    }
    for (String dir : System.getenv().getOrDefault("PATH", "").split(java.io.File.pathSeparator)) {
      if (!dir.isEmpty() && Files.exists(Path.of(dir, executable))) {
        return true;
      }
    }
    return false;
  }

  /** The words of the method line after the keyword: {@code [name, address, ARGS:...]} or {@code [name, socks5, address]}. */
  public List<String> method() {
    return method;
  }

  public boolean isAlive() {
    return process.isAlive();
  }

  private static List<String> readMethod(Process process, String word, String transport) {
    BufferedReader out = new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8));
    List<String> seen = new ArrayList<>();
    List<String> method = null;
    try {
      for (String line; (line = out.readLine()) != null; ) {
        seen.add(line);
        List<String> w = List.of(line.split(" "));
        if (w.get(0).endsWith("-ERROR")) {
          throw new IllegalStateException("the pluggable transport refused: " + line);
        }
        if (w.get(0).equals(word) && w.size() >= 3 && w.get(1).equals(transport)) {
          method = w.subList(1, w.size());
        } else if (w.get(0).equals(word + "S")) {
          if (method == null) {
            throw new IllegalStateException("the pluggable transport offered no " + transport + ": " + seen);
          }
          Thread drain = new Thread(() -> {
            try {
              while (out.readLine() != null) {
                // Dropped: see the class comment.
              }
            } catch (IOException ignored) {
              // The process is gone.
            }
          }, "pt-output");
          drain.setDaemon(true);
          drain.start();
          return method;
        }
      }
    } catch (IOException e) {
      throw new IllegalStateException("the pluggable transport's output is unreadable: " + e.getMessage(), e);
    }
    throw new IllegalStateException("the pluggable transport exited during start-up: " + seen);
  }

  /** Closes its stdin (it exits), then waits a moment, then kills it. */
  @Override
  public void close() {
    try (OutputStream stdin = process.getOutputStream()) {
      stdin.flush();
    } catch (IOException ignored) {
      // Already gone.
    }
    try {
      if (!process.waitFor(3, TimeUnit.SECONDS)) {
        process.destroyForcibly();
        process.waitFor(3, TimeUnit.SECONDS);
      }
    } catch (InterruptedException e) {
      process.destroyForcibly();
      Thread.currentThread().interrupt();
    }
  }
}
