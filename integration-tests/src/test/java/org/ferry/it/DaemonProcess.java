package org.ferry.it;

import static org.awaitility.Awaitility.await;

import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.ferry.sdk.cli.ClientMain;
import org.ferry.sdk.cli.daemon.DaemonCli;

/** {@code ferry client daemon} as its own process (a JVM from this test's class path). */
final class DaemonProcess implements AutoCloseable {
  final Path data;
  final Path socket;
  final Path stderr;
  final Process process;

  private DaemonProcess(Path data, Path logs) throws IOException {
    this.data = data;
    this.socket = DaemonCli.socketOf(data);
    Files.createDirectories(logs);
    this.stderr = Files.createTempFile(logs, "daemon", ".err");
    List<String> command = new ArrayList<>(List.of(
        Path.of(System.getProperty("java.home"), "bin", "java").toString(),
        "-cp", System.getProperty("java.class.path"),
        ClientMain.class.getName(), "--data", data.toString(), "daemon"));
    this.process = new ProcessBuilder(command).redirectOutput(ProcessBuilder.Redirect.DISCARD)
        .redirectError(stderr.toFile()).start();
  }

  /** Starts a daemon for {@code data} and waits until its socket answers. */
  static DaemonProcess start(Path data, Path logs) throws IOException {
    DaemonProcess d = new DaemonProcess(data, logs);
    await().atMost(Duration.ofSeconds(60)).until(() -> {
      if (!d.process.isAlive()) {
        throw new AssertionError("the daemon exited " + d.process.exitValue() + ": " + d.stderrText());
      }
      return d.answers();
    });
    return d;
  }

  /** Starts a daemon process without waiting for it. */
  static DaemonProcess launch(Path data, Path logs) throws IOException {
    return new DaemonProcess(data, logs);
  }

  boolean answers() {
    try (SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX)) {
      ch.connect(UnixDomainSocketAddress.of(socket));
      return true;
    } catch (IOException e) {
      return false;
    }
  }

  String stderrText() {
    try {
      return Files.readString(stderr, StandardCharsets.UTF_8);
    } catch (IOException e) {
      return "(unreadable: " + e + ")";
    }
  }

  /** Waits for the process to end by itself; its exit code. */
  int awaitExit() throws InterruptedException {
    if (!process.waitFor(60, TimeUnit.SECONDS)) {
      throw new AssertionError("still running");
    }
    return process.exitValue();
  }

  /** SIGTERM, then waits for the end. */
  void stop() throws InterruptedException {
    process.destroy();
    if (!process.waitFor(30, TimeUnit.SECONDS)) {
      process.destroyForcibly().waitFor();
      throw new AssertionError("the daemon did not stop on SIGTERM");
    }
  }

  /** SIGKILL: a daemon that had no chance to clean up. */
  void kill() throws InterruptedException {
    process.destroyForcibly().waitFor();
  }

  @Override
  public void close() throws InterruptedException {
    if (process.isAlive()) {
      stop();
    }
  }
}
