package org.ferry.relay;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import org.ferry.ops.config.ConfigException;
import org.ferry.ops.config.ConfigFile;
import org.ferry.ops.config.OperatorOptions;
import org.ferry.ops.metrics.MetricsEndpoint;
import io.prometheus.metrics.model.registry.PrometheusRegistry;
import org.ferry.proto.BridgeLine;
import org.ferry.proto.HostPort;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** {@code ferry relay}: runs a stateless bridge in the foreground until SIGTERM or Ctrl-C. */
@Command(
    name = "ferry relay",
    mixinStandardHelpOptions = true,
    description = "Runs a Ferry relay: a stateless bridge that censored clients reach over "
        + "obfuscated carriers, forwarding to one server.")
public final class RelayMain implements Callable<Integer> {
  @Option(names = "--data", defaultValue = "./ferry-data/relay",
      description = "Data directory (the relay's own keys and bridge lines); default ${DEFAULT-VALUE}.")
  Path data;

  @Option(names = "--listen",
      description = "HOST:PORT of the web port (HTTPS, WebSocket and polling); required.")
  String listen;

  @Option(names = "--upstream",
      description = "The server to forward to, as its address (HOST:PORT#FINGERPRINT or HOST:PORT); required.")
  String upstream;

  @Option(names = "--carriers", defaultValue = "ws,poll,obfs4",
      description = "Carriers to accept, from ws, poll, obfs4; default ${DEFAULT-VALUE}.")
  String carriers;

  @Option(names = "--public-host",
      description = "Host that clients dial, written into bridge lines; default: the listen host.")
  String publicHost;

  @Option(names = "--obfs4-listen",
      description = "HOST:PORT for obfs4; default: the listen host, the web port + 1.")
  String obfs4Listen;

  @Option(names = "--fallback",
      description = "HOST:PORT of a real web server (plain HTTP, such as an nginx on loopback) that "
          + "gets every connection to the web port that is not a carrier's, so probers meet a real "
          + "site. Default: a built-in imitation of nginx answers them.")
  String fallback;

  @Option(names = "--obfs4proxy", defaultValue = "obfs4proxy",
      description = "The obfs4proxy executable; default ${DEFAULT-VALUE}.")
  String obfs4proxy;

  @Mixin OperatorOptions operator;

  @Spec CommandSpec spec;

  public static void main(String[] args) {
    quietNetty();
    System.exit(new CommandLine(new RelayMain()).execute(args));
  }

  /**
   * Netty reports connection errors it is left with (resets, bad TLS from probers) at WARN, at
   * times with a peer's address. A relay must not keep traces of who connected: only errors.
   * Call before anything logs; an explicit setting of the operator's wins.
   */
  public static void quietNetty() {
    if (System.getProperty("org.slf4j.simpleLogger.log.io.netty") == null) {
      System.setProperty("org.slf4j.simpleLogger.log.io.netty", "error");
    }
  }

  @Override
  public Integer call() throws Exception {
    try {
      ConfigFile settings = operator.load(spec.commandLine());
      for (String key : List.of("listen", "upstream")) {
        if (spec.findOption("--" + key).getValue() == null) {
          throw new ConfigException("--" + key + " is required (or '" + key + "' in the config file)");
        }
      }
      settings.check("data", (java.nio.file.Path v) -> {
        if (v.toString().isBlank()) {
          throw new IllegalArgumentException("must name a directory, got an empty path");
        }
      });
      settings.check("listen", (String v) -> HostPort.parse(v));
      settings.check("upstream", (String v) -> {
        if (v.contains("#")) {
          org.ferry.proto.ServerAddress.parse(v);
        } else {
          HostPort.parse(v);
        }
      });
      settings.check("carriers", (String v) -> Carrier.parseList(v));
      settings.check("public-host", (String v) -> HostPort.checkHost(v));
      settings.check("obfs4-listen", (String v) -> HostPort.parse(v));
      settings.check("fallback", (String v) -> HostPort.parse(v));
      settings.check("metrics-listen", (String v) -> HostPort.parse(v));
      if (operator.printConfig()) {
        System.out.print(settings.print());
        return 0;
      }
    } catch (ConfigException e) {
      System.err.println("ferry relay: " + e.getMessage());
      return 2;
    }
    operator.applyLogLevel();
    Relay relay;
    MetricsEndpoint metricsEndpoint = null;
    try {
      Set<Carrier> chosen = Carrier.parseList(carriers);
      Relay.Builder b = Relay.builder()
          .dataDirectory(data)
          .listen(parseHostPort("--listen", listen))
          .upstream(parseHostPort("--upstream", upstream.contains("#") ? upstream.substring(0, upstream.indexOf('#')) : upstream))
          .carriers(chosen)
          .obfs4proxy(obfs4proxy);
      if (publicHost != null) {
        b.publicHost(publicHost);
      }
      if (obfs4Listen != null) {
        b.obfs4Listen(parseHostPort("--obfs4-listen", obfs4Listen));
      }
      if (fallback != null) {
        b.fallback(parseHostPort("--fallback", fallback));
      }
      PrometheusRegistry registry = null;
      if (operator.metricsListen().isPresent()) {
        registry = new PrometheusRegistry();
        b.metrics(registry);
      }
      relay = b.start();
      if (registry != null) {
        try {
          metricsEndpoint = MetricsEndpoint.start(
              parseHostPort("--metrics-listen", operator.metricsListen().get()), registry);
        } catch (IOException e) {
          relay.close();
          throw new IOException("cannot listen for metrics on " + operator.metricsListen().get() + ": "
              + e.getMessage(), e);
        }
      }
    } catch (IllegalArgumentException | IOException e) {
      System.err.println("ferry relay: " + e.getMessage());
      return e instanceof IOException ? 1 : 2;
    }
    MetricsEndpoint metrics = metricsEndpoint;
    CountDownLatch stopped = new CountDownLatch(1);
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      relay.close();
      if (metrics != null) {
        metrics.close();
      }
      stopped.countDown();
    }, "ferry-relay-shutdown"));
    if (metrics != null) {
      System.out.println("metrics: http://" + HostPort.format(
          HostPort.parse(operator.metricsListen().get()).host(), metrics.port()) + "/metrics");
    }
    for (BridgeLine line : relay.bridgeLines()) {
      System.out.println("bridge: " + line);
    }
    System.out.println("ferry relay ready: forwarding to " + upstream.split("#")[0]
        + "; bridge lines also in " + data.resolve("bridges"));
    System.out.flush();
    stopped.await();
    return 0;
  }

  /** Parses {@code HOST:PORT} (IPv6 in brackets); throws naming the option. */
  public static InetSocketAddress parseHostPort(String option, String text) {
    try {
      return HostPort.parse(text).toSocketAddress();
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException(option + " must be HOST:PORT, got '" + text + "'", e);
    }
  }
}
