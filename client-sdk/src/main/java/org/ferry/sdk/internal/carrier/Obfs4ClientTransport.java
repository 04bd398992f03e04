package org.ferry.sdk.internal.carrier;

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
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * The real {@code obfs4proxy}, run as a managed client transport (Tor pluggable-transport spec,
 * version 1). It offers a SOCKS5 port on loopback; a connection through it to a bridge's address,
 * with the bridge's {@code cert} and {@code iat-mode} as the SOCKS username, is an obfs4 session
 * to that bridge. A proxy set for the client is handed to it as TOR_PT_PROXY. The process ends
 * when we close its stdin, or when this JVM dies.
 */
final class Obfs4ClientTransport implements AutoCloseable {
  private static final long START_SECONDS = 20;

  private final Process process;
  private final InetSocketAddress socks;

  private Obfs4ClientTransport(Process process, InetSocketAddress socks) {
    this.process = process;
    this.socks = socks;
  }

  static Obfs4ClientTransport start(String executable, Path stateDir, Optional<ProxySettings> proxy)
      throws IOException {
    Files.createDirectories(stateDir);
    ProcessBuilder pb = new ProcessBuilder(executable);
    Map<String, String> env = pb.environment();
    env.put("TOR_PT_MANAGED_TRANSPORT_VER", "1");
    env.put("TOR_PT_STATE_LOCATION", stateDir.toAbsolutePath().toString());
    env.put("TOR_PT_CLIENT_TRANSPORTS", "obfs4");
    env.put("TOR_PT_EXIT_ON_STDIN_CLOSE", "1");
    proxy.ifPresent(p -> env.put("TOR_PT_PROXY", p.uri()));
    pb.redirectErrorStream(true);
    Process process;
    try {
      process = pb.start();
    } catch (IOException e) {
      throw new IOException("cannot run " + executable + " for obfs4 bridges (install obfs4proxy): "
          + e.getMessage(), e);
    }
    CompletableFuture<InetSocketAddress> method = CompletableFuture.supplyAsync(() -> readMethod(process));
    try {
      return new Obfs4ClientTransport(process, method.get(START_SECONDS, TimeUnit.SECONDS));
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
    }
  }

  private static InetSocketAddress readMethod(Process process) {
    BufferedReader out = new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8));
    List<String> seen = new ArrayList<>();
    InetSocketAddress socks = null;
    try {
      for (String line; (line = out.readLine()) != null; ) {
        seen.add(line);
        String[] w = line.split(" ");
        switch (w[0]) {
          case "CMETHOD" -> {
            if (w.length >= 4 && w[1].equals("obfs4") && w[2].equals("socks5")) {
              int colon = w[3].lastIndexOf(':');
              socks = new InetSocketAddress(
                  w[3].substring(0, colon).replaceAll("^\\[|\\]$", ""), Integer.parseInt(w[3].substring(colon + 1)));
            }
          }
          case "CMETHOD-ERROR", "ENV-ERROR", "VERSION-ERROR", "PROXY-ERROR" ->
              throw new IllegalStateException("obfs4proxy refused: " + line);
          case "CMETHODS" -> {
            if (socks == null) {
              throw new IllegalStateException("obfs4proxy offered no obfs4 SOCKS5 port: " + seen);
            }
            InetSocketAddress found = socks;
            Thread t = new Thread(() -> {
              try {
                while (out.readLine() != null) {
                  // Not logged: obfs4proxy's messages may carry addresses.
                }
              } catch (IOException ignored) {
                // The process is gone.
              }
            }, "obfs4proxy-output");
            t.setDaemon(true);
            t.start();
            return found;
          }
          default -> {
            // VERSION, PROXY DONE and other informational lines.
          }
        }
      }
    } catch (IOException e) {
      throw new IllegalStateException("obfs4proxy output unreadable: " + e.getMessage(), e);
    }
    throw new IllegalStateException("obfs4proxy exited during start-up: " + seen);
  }

  InetSocketAddress socksAddress() {
    return socks;
  }

  boolean isAlive() {
    return process.isAlive();
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
