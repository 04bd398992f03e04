package org.ferry.it;

import static org.awaitility.Awaitility.await;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;

/** A helper program (nginx, a proxy) run for a test, listening on a loopback port. */
final class ExternalProcess implements AutoCloseable {
  private final Process process;

  private ExternalProcess(Process process) {
    this.process = process;
  }

  /** Starts {@code command} with output to {@code log}, and waits until {@code port} accepts. */
  static ExternalProcess start(List<String> command, Path log, int port) throws IOException {
    Process p = new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(log.toFile()).start();
    ExternalProcess ep = new ExternalProcess(p);
    try {
      await().atMost(Duration.ofSeconds(15)).pollInterval(Duration.ofMillis(50)).until(() -> {
        if (!p.isAlive()) {
          throw new IllegalStateException(command.get(0) + " exited: " + java.nio.file.Files.readString(log));
        }
        try (Socket s = new Socket()) {
          s.connect(new InetSocketAddress("127.0.0.1", port), 200);
          return true;
        } catch (IOException e) {
          return false;
        }
      });
    } catch (RuntimeException e) {
      ep.close();
      throw e;
    }
    return ep;
  }

  /** A loopback port that was free a moment ago. */
  static int freePort() throws IOException {
    try (ServerSocket s = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
      return s.getLocalPort();
    }
  }

  @Override
  public void close() {
    process.destroy();
    try {
      if (!process.waitFor(5, TimeUnit.SECONDS)) {
        process.destroyForcibly();
        process.waitFor(5, TimeUnit.SECONDS);
      }
    } catch (InterruptedException e) {
      process.destroyForcibly();
      Thread.currentThread().interrupt();
    }
  }
}
