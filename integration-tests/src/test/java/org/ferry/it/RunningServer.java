package org.ferry.it;

import io.grpc.ServerInterceptor;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Clock;
import java.util.ArrayList;
import java.util.List;
import java.util.function.UnaryOperator;
import org.ferry.proto.ServerAddress;
import org.ferry.server.FerryServer;
import org.ferry.server.testing.MutableClock;

/** A real Ferry server on loopback with TLS, restartable on the same port and data. */
final class RunningServer implements AutoCloseable {
  private final Path data;
  private final Clock clock;
  private final List<ServerInterceptor> interceptors = new ArrayList<>();
  private UnaryOperator<FerryServer.Builder> config = UnaryOperator.identity();
  private FerryServer server;
  private int port;

  RunningServer(Path data) throws IOException {
    this(data, Clock.systemUTC());
  }

  RunningServer(Path data, Clock clock, ServerInterceptor... interceptors) throws IOException {
    this(data, 0, clock, interceptors);
  }

  private RunningServer(Path data, int port, Clock clock, ServerInterceptor... interceptors) throws IOException {
    this.data = data;
    this.clock = clock;
    this.interceptors.addAll(List.of(interceptors));
    start(port);
  }

  /** A server on a given port, for instance one that takes over another's address. */
  static RunningServer onPort(Path data, int port) throws IOException {
    return new RunningServer(data, port, Clock.systemUTC());
  }

  /** A server with settings of the test's (quotas, tokens...). */
  static RunningServer configured(Path data, UnaryOperator<FerryServer.Builder> config) throws IOException {
    return new RunningServer(data, 0, Clock.systemUTC(), config);
  }

  private RunningServer(Path data, int port, Clock clock, UnaryOperator<FerryServer.Builder> config)
      throws IOException {
    this.data = data;
    this.clock = clock;
    this.config = config;
    start(port);
  }

  private void start(int onPort) throws IOException {
    FerryServer.Builder b = FerryServer.builder().dataDirectory(data).listen("127.0.0.1", onPort).clock(clock);
    if (clock instanceof MutableClock moved) {
      // Time the test moves passes for durations and rates too.
      b.ticker(moved::nanoTime);
    }
    interceptors.forEach(b::interceptor);
    server = config.apply(b).start();
    port = server.address().port();
  }

  ServerAddress address() {
    return server.address();
  }

  /** Where its metrics are served, if it was configured with a metrics address. */
  java.util.Optional<java.net.InetSocketAddress> metricsAddress() {
    return server.metricsAddress();
  }

  void stop() {
    server.close();
  }

  /** Stops and starts again on the same port with the same data directory. */
  void restart() throws IOException {
    server.close();
    start(port);
  }

  @Override
  public void close() {
    server.close();
  }
}
