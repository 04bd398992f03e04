package org.ferry.it;

import static org.awaitility.Awaitility.await;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.ferry.proto.ServerAddress;

/**
 * {@code ferry server} or {@code ferry relay} as its own process (this test's class path), with
 * stdout and stderr in files of {@code dir}; stopped with SIGTERM on close.
 */
final class FerryProcess implements AutoCloseable {
  private static final Pattern SERVER_READY = Pattern.compile("ferry server ready: (\\S+)");

  private final Process process;
  private final Path stdout;
  private final Path stderr;

  private FerryProcess(Process process, Path stdout, Path stderr) {
    this.process = process;
    this.stdout = stdout;
    this.stderr = stderr;
  }

  /** Runs {@code ferry server ARGS} to its end (for --print-config and errors). */
  static Exited runServer(Path dir, String... args) throws IOException, InterruptedException {
    return run(dir, "org.ferry.server.ServerMain", args);
  }

  /** Runs {@code ferry relay ARGS} to its end. */
  static Exited runRelay(Path dir, String... args) throws IOException, InterruptedException {
    return run(dir, "org.ferry.relay.RelayMain", args);
  }

  record Exited(int exit, String out, String err) {
    List<String> errLines() {
      return err.isEmpty() ? List.of() : List.of(err.split("\n"));
    }
  }

  private static Exited run(Path dir, String main, String... args) throws IOException, InterruptedException {
    try (FerryProcess p = start(dir, main, args)) {
      if (!p.process.waitFor(60, TimeUnit.SECONDS)) {
        throw new AssertionError(main + " did not exit; stderr:\n" + p.err());
      }
      return new Exited(p.process.exitValue(), p.out(), p.err());
    }
  }

  /** Starts {@code ferry server ARGS} and waits for its ready line. */
  static FerryProcess server(Path dir, String... args) throws IOException {
    FerryProcess p = start(dir, "org.ferry.server.ServerMain", args);
    p.awaitOutput(SERVER_READY);
    return p;
  }

  /** Starts {@code ferry relay ARGS} and waits for its ready line. */
  static FerryProcess relay(Path dir, String... args) throws IOException {
    FerryProcess p = start(dir, "org.ferry.relay.RelayMain", args);
    p.awaitOutput(Pattern.compile("ferry relay ready"));
    return p;
  }

  private static FerryProcess start(Path dir, String main, String... args) throws IOException {
    Files.createDirectories(dir);
    List<String> command = new ArrayList<>(List.of(
        Path.of(System.getProperty("java.home"), "bin", "java").toString(),
        "-cp", System.getProperty("java.class.path"), main));
    command.addAll(List.of(args));
    Path out = Files.createTempFile(dir, "stdout", ".txt");
    Path err = Files.createTempFile(dir, "stderr", ".txt");
    Process process = new ProcessBuilder(command)
        .redirectOutput(out.toFile())
        .redirectError(err.toFile())
        .start();
    return new FerryProcess(process, out, err);
  }

  private void awaitOutput(Pattern ready) {
    try {
      await().atMost(Duration.ofSeconds(60)).until(() -> {
        if (!process.isAlive() && !ready.matcher(out()).find()) {
          throw new AssertionError("exited " + process.exitValue() + ": " + err());
        }
        return ready.matcher(out()).find();
      });
    } catch (RuntimeException | Error e) {
      close();
      throw e;
    }
  }

  /** The address on the server's ready line. */
  ServerAddress address() throws IOException {
    Matcher m = SERVER_READY.matcher(out());
    if (!m.find()) {
      throw new IllegalStateException("no ready line");
    }
    return ServerAddress.parse(m.group(1));
  }

  String out() throws IOException {
    return Files.readString(stdout);
  }

  String err() throws IOException {
    return Files.readString(stderr);
  }

  /** Stops the process with SIGTERM (then SIGKILL after 20 s) and waits for it. */
  void stop() {
    process.destroy();
    try {
      if (!process.waitFor(20, TimeUnit.SECONDS)) {
        process.destroyForcibly();
        process.waitFor(10, TimeUnit.SECONDS);
      }
    } catch (InterruptedException e) {
      process.destroyForcibly();
      Thread.currentThread().interrupt();
    }
  }

  @Override
  public void close() {
    stop();
  }
}
