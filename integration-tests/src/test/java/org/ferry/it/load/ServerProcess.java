package org.ferry.it.load;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.ferry.proto.ServerAddress;

/** A real `ferry server` in its own process, for crash and load runs. */
public final class ServerProcess implements AutoCloseable {
  private static final String READY = "ferry server ready: ";

  private final Process process;
  private final ServerAddress address;

  private ServerProcess(Process process, ServerAddress address) {
    this.process = process;
    this.address = address;
  }

  /**
   * How to start a server: the JVM command (`java -cp ... ServerMain` from a test's class path,
   * or `java -jar ferry-server.jar` from a script) and its data directory.
   */
  public record Command(List<String> java, Path data, List<String> extraArgs) {
    /** Runs ServerMain from this JVM's own class path (tests). */
    public static Command fromClassPath(Path data, List<String> jvmArgs, List<String> extraArgs) {
      List<String> java = new ArrayList<>();
      java.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
      java.addAll(jvmArgs);
      java.addAll(List.of("-cp", System.getProperty("java.class.path"), "org.ferry.server.ServerMain"));
      return new Command(java, data, extraArgs);
    }

    /** Runs the packaged server jar (scripts). */
    public static Command fromJar(Path jar, Path data, List<String> jvmArgs, List<String> extraArgs) {
      List<String> java = new ArrayList<>();
      java.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
      java.addAll(jvmArgs);
      java.addAll(List.of("-jar", jar.toString()));
      return new Command(java, data, extraArgs);
    }
  }

  /** Starts a server listening on 127.0.0.1:{@code port} (0: any) and waits for its ready line. */
  public static ServerProcess start(Command command, int port) throws IOException {
    return start(command, "127.0.0.1", port);
  }

  /** Starts a server listening on {@code host:port} (0: any) and waits for its ready line. */
  public static ServerProcess start(Command command, String host, int port) throws IOException {
    Files.createDirectories(command.data().toAbsolutePath().getParent());
    List<String> args = new ArrayList<>(command.java());
    args.addAll(List.of("--data", command.data().toString(), "--listen", host + ":" + port));
    args.addAll(command.extraArgs());
    Process p = new ProcessBuilder(args)
        .redirectError(ProcessBuilder.Redirect.appendTo(command.data().resolveSibling("server-stderr.log").toFile()))
        .start();
    CompletableFuture<ServerAddress> ready = CompletableFuture.supplyAsync(() -> readyLine(p));
    try {
      return new ServerProcess(p, ready.get(60, TimeUnit.SECONDS));
    } catch (InterruptedException | ExecutionException | TimeoutException e) {
      p.destroyForcibly();
      if (e instanceof InterruptedException) {
        Thread.currentThread().interrupt();
      }
      throw new IOException("server did not become ready (see server-stderr.log beside its data)", e);
    }
  }

  /** Reads stdout until the ready line; keeps draining it afterwards so the server never blocks. */
  private static ServerAddress readyLine(Process p) {
    BufferedReader out = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8));
    try {
      String line;
      while ((line = out.readLine()) != null) {
        if (line.startsWith(READY)) {
          ServerAddress address = ServerAddress.parse(line.substring(READY.length()).strip());
          Thread drain = new Thread(() -> drain(out), "server-stdout");
          drain.setDaemon(true);
          drain.start();
          return address;
        }
      }
    } catch (IOException e) {
      throw new IllegalStateException(e);
    }
    throw new IllegalStateException("server exited before it was ready: " + p.exitValue());
  }

  private static void drain(BufferedReader out) {
    try {
      while (out.readLine() != null) {
        // Discard.
      }
    } catch (IOException e) {
      // The process is gone.
    }
  }

  public ServerAddress address() {
    return address;
  }

  public boolean isAlive() {
    return process.isAlive();
  }

  public long pid() {
    return process.pid();
  }

  /** SIGKILL: no shutdown hook, no flush, nothing but what is on disk survives. */
  public void kill() throws InterruptedException {
    process.destroyForcibly();
    process.waitFor();
  }

  /** SIGTERM, and wait for the clean exit. */
  @Override
  public void close() {
    process.destroy();
    try {
      if (!process.waitFor(30, TimeUnit.SECONDS)) {
        process.destroyForcibly();
        process.waitFor();
      }
    } catch (InterruptedException e) {
      process.destroyForcibly();
      Thread.currentThread().interrupt();
    }
  }
}
