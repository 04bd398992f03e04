package org.ferry.server;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code ferry server}: runs a home server in the foreground until SIGTERM or Ctrl-C. */
@Command(
    name = "ferry server",
    mixinStandardHelpOptions = true,
    description = "Runs a Ferry home server in the foreground.")
public final class ServerMain implements Callable<Integer> {
  @Option(names = "--data", defaultValue = "./ferry-data/server",
      description = "Data directory (key and store); default ${DEFAULT-VALUE}.")
  Path data;

  @Option(names = "--listen", defaultValue = "127.0.0.1:7443",
      description = "HOST:PORT to listen on; default ${DEFAULT-VALUE}.")
  String listen;

  @Option(names = "--advertise",
      description = "Host that clients should dial, when it is not the listen host.")
  String advertise;

  /**
   * gRPC logs through java.util.logging, and its lower levels report transport failures with
   * the bytes a client sent and, in places, its address. Probes must not fill an operator's log
   * or leave traces of who connected, so only severe gRPC events are logged. Held here so the
   * setting is not garbage collected.
   */
  private static final java.util.logging.Logger GRPC_LOG = java.util.logging.Logger.getLogger("io.grpc");

  public static void main(String[] args) {
    GRPC_LOG.setLevel(java.util.logging.Level.SEVERE);
    System.exit(new CommandLine(new ServerMain()).execute(args));
  }

  @Override
  public Integer call() throws Exception {
    int colon = listen.lastIndexOf(':');
    int port;
    try {
      port = Integer.parseInt(listen.substring(colon + 1));
    } catch (NumberFormatException | StringIndexOutOfBoundsException e) {
      System.err.println("ferry server: --listen must be HOST:PORT, got '" + listen + "'");
      return 2;
    }
    if (colon <= 0 || port < 0 || port > 65535) {
      System.err.println("ferry server: --listen must be HOST:PORT, got '" + listen + "'");
      return 2;
    }
    String host = listen.substring(0, colon).replaceAll("^\\[|\\]$", "");
    FerryServer.Builder builder = FerryServer.builder().dataDirectory(data).listen(host, port);
    if (advertise != null) {
      builder.advertisedHost(advertise);
    }
    FerryServer server;
    try {
      server = builder.start();
    } catch (IOException e) {
      System.err.println("ferry server: " + rootMessage(e));
      return 1;
    }
    CountDownLatch stopped = new CountDownLatch(1);
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      server.close();
      stopped.countDown();
    }, "ferry-shutdown"));
    writeAtomically(data.resolve("server-address"), server.address() + "\n");
    System.out.println("ferry server ready: " + server.address());
    System.out.flush();
    server.awaitTermination();
    stopped.await();
    return 0;
  }

  private static String rootMessage(Throwable e) {
    Throwable t = e;
    while (t.getCause() != null && t.getCause() != t) {
      t = t.getCause();
    }
    String m = e.getMessage();
    return m != null ? m : t.toString();
  }

  private static void writeAtomically(Path file, String content) throws IOException {
    Path tmp = Files.createTempFile(file.getParent(), "server-address", ".tmp");
    Files.writeString(tmp, content, StandardCharsets.UTF_8);
    Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
  }
}
