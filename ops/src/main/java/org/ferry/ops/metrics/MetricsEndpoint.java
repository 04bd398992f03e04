package org.ferry.ops.metrics;

import io.prometheus.metrics.exporter.httpserver.HTTPServer;
import io.prometheus.metrics.instrumentation.jvm.JvmMetrics;
import io.prometheus.metrics.model.registry.PrometheusRegistry;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.util.Objects;

/**
 * The metrics listener: plain HTTP, {@code GET /metrics} in the Prometheus text exposition
 * format (version 0.0.4; OpenMetrics on request), from the official Prometheus Java client's
 * HTTP exporter. It has no authentication: bind it to loopback or a private network. Adds the
 * JVM's own metrics (memory, GC, threads, class loading) to {@code registry}.
 */
public final class MetricsEndpoint implements AutoCloseable {
  private final HTTPServer server;

  private MetricsEndpoint(HTTPServer server) {
    this.server = server;
  }

  /**
   * Starts listening on {@code address} (port 0 picks one; see {@link #port}).
   *
   * @throws IOException if the address cannot be bound
   */
  public static MetricsEndpoint start(InetSocketAddress address, PrometheusRegistry registry) throws IOException {
    Objects.requireNonNull(registry, "registry");
    if (!address.getAddress().isLoopbackAddress()) {
      org.slf4j.LoggerFactory.getLogger(MetricsEndpoint.class).warn(
          "metrics are served without authentication beyond loopback, on {}: anyone who can reach it"
              + " reads the server's traffic figures; keep it on 127.0.0.1 or behind a firewall",
          address.getAddress().getHostAddress());
    }
    JvmMetrics.builder().register(registry);
    HTTPServer server = HTTPServer.builder()
        .inetAddress(address.getAddress())
        .port(address.getPort())
        .registry(registry)
        .buildAndStart();
    return new MetricsEndpoint(server);
  }

  /** The bound port. */
  public int port() {
    return server.getPort();
  }

  @Override
  public void close() {
    server.close();
  }
}
