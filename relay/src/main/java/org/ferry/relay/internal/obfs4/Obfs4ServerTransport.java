package org.ferry.relay.internal.obfs4;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.InetSocketAddress;
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
 * The real {@code obfs4proxy}, run as a managed server transport (Tor pluggable-transport spec,
 * version 1): it listens on the bridge port, removes the obfs4 layer and hands plain bytes to our
 * "ORPort", a loopback listener that forwards to the server. Its keys live in its state
 * directory, so the bridge line (with its cert) stays the same across restarts. The process ends
 * when we close its stdin or are killed.
 */
public final class Obfs4ServerTransport implements AutoCloseable {
  private static final long START_SECONDS = 20;

  private final Process process;
  private final InetSocketAddress bound;
  private final String cert;
  private final String iatMode;

  private Obfs4ServerTransport(Process process, InetSocketAddress bound, String cert, String iatMode) {
    this.process = process;
    this.bound = bound;
    this.cert = cert;
    this.iatMode = iatMode;
  }

  /**
   * Starts obfs4proxy listening on {@code bind} and forwarding to {@code orPort}.
   *
   * @throws IOException if it cannot be started or reports an error; the message says which
   */
  public static Obfs4ServerTransport start(
      String executable, Path stateDir, InetSocketAddress bind, InetSocketAddress orPort) throws IOException {
    Files.createDirectories(stateDir);
    ProcessBuilder pb = new ProcessBuilder(executable);
    Map<String, String> env = pb.environment();
    env.put("TOR_PT_MANAGED_TRANSPORT_VER", "1");
    env.put("TOR_PT_STATE_LOCATION", stateDir.toAbsolutePath().toString());
    env.put("TOR_PT_SERVER_TRANSPORTS", "obfs4");
    env.put("TOR_PT_SERVER_BINDADDR", "obfs4-" + hostPort(bind));
    env.put("TOR_PT_ORPORT", hostPort(orPort));
    env.put("TOR_PT_EXIT_ON_STDIN_CLOSE", "1");
    pb.redirectErrorStream(true);
    Process process;
    try {
      process = pb.start();
    } catch (IOException e) {
      throw new IOException("cannot run " + executable + " (install the obfs4proxy package, "
          + "or leave obfs4 out of --carriers): " + e.getMessage(), e);
    }
    CompletableFuture<String[]> method = CompletableFuture.supplyAsync(() -> readMethod(process));
    try {
      String[] m = method.get(START_SECONDS, TimeUnit.SECONDS);
      InetSocketAddress at = parseHostPort(m[0]);
      String cert = null;
      String iat = "0";
      for (String arg : m[1].split(",")) {
        if (arg.startsWith("cert=")) {
          cert = arg.substring(5);
        } else if (arg.startsWith("iat-mode=")) {
          iat = arg.substring(9);
        }
      }
      if (cert == null) {
        throw new IOException("obfs4proxy gave no cert: " + m[1]);
      }
      return new Obfs4ServerTransport(process, at, cert, iat);
    } catch (ExecutionException e) {
      process.destroyForcibly();
      throw new IOException(e.getCause().getMessage(), e.getCause());
    } catch (TimeoutException e) {
      process.destroyForcibly();
      throw new IOException("obfs4proxy did not start within " + START_SECONDS + " s");
    } catch (InterruptedException e) {
      process.destroyForcibly();
      Thread.currentThread().interrupt();
      throw new IOException("interrupted while starting obfs4proxy", e);
    } catch (IOException | RuntimeException e) {
      process.destroyForcibly();
      throw e;
    }
  }

  /** Reads the managed-transport handshake; returns {address, args} of the obfs4 method. */
  private static String[] readMethod(Process process) {
    BufferedReader out = new BufferedReader(
        new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8));
    List<String> seen = new ArrayList<>();
    String[] method = null;
    try {
      for (String line; (line = out.readLine()) != null; ) {
        seen.add(line);
        String[] w = line.split(" ");
        switch (w[0]) {
          case "SMETHOD" -> {
            if (w.length >= 4 && w[1].equals("obfs4") && w[3].startsWith("ARGS:")) {
              method = new String[] {w[2], w[3].substring(5)};
            }
          }
          case "SMETHOD-ERROR", "ENV-ERROR", "VERSION-ERROR" ->
              throw new IllegalStateException("obfs4proxy refused: " + line);
          case "SMETHODS" -> {
            if (method == null) {
              throw new IllegalStateException("obfs4proxy offered no obfs4 method: " + seen);
            }
            drain(out);
            return method;
          }
          default -> {
            // VERSION and anything informational.
          }
        }
      }
    } catch (IOException e) {
      throw new IllegalStateException("obfs4proxy output unreadable: " + e.getMessage(), e);
    }
    throw new IllegalStateException("obfs4proxy exited during start-up: " + seen);
  }

  /** Keeps reading the process's output so that it never blocks on a full pipe. */
  private static void drain(BufferedReader out) {
    Thread t = new Thread(() -> {
      try {
        while (out.readLine() != null) {
          // obfs4proxy's own messages are not ours to log: they may carry addresses.
        }
      } catch (IOException ignored) {
        // The process is gone.
      }
    }, "obfs4proxy-output");
    t.setDaemon(true);
    t.start();
  }

  /** Where obfs4proxy listens. */
  public InetSocketAddress address() {
    return bound;
  }

  /** The {@code cert=... iat-mode=...} part of the bridge line. */
  public String arguments() {
    return "cert=" + cert + " iat-mode=" + iatMode;
  }

  static String hostPort(InetSocketAddress a) {
    String host = a.getHostString();
    return (host.contains(":") ? "[" + host + "]" : host) + ":" + a.getPort();
  }

  static InetSocketAddress parseHostPort(String text) {
    int colon = text.lastIndexOf(':');
    String host = text.substring(0, colon).replaceAll("^\\[|\\]$", "");
    return new InetSocketAddress(host, Integer.parseInt(text.substring(colon + 1)));
  }

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
