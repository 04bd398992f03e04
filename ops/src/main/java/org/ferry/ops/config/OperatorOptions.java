package org.ferry.ops.config;

import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import org.ferry.ops.log.OneLineLogs;
import picocli.CommandLine;
import picocli.CommandLine.Option;

/**
 * The options that {@code ferry server} and {@code ferry relay} share as a picocli
 * {@code @Mixin}: {@code --config}, {@code --print-config}, {@code --log-level} and
 * {@code --metrics-listen}.
 */
public final class OperatorOptions {
  /** Log levels an operator can choose, least verbose first. */
  private static final List<String> LOG_LEVELS = List.of("error", "warn", "info", "debug");

  @Option(names = "--log-level", defaultValue = "info",
      description = "Least severe log messages written: error, warn, info or debug; default ${DEFAULT-VALUE}.")
  String logLevel;

  @Option(names = "--metrics-listen",
      description = "HOST:PORT for Prometheus metrics over plain HTTP (keep it on loopback or a private "
          + "network: it has no authentication). Default: no metrics listener.")
  String metricsListen;

  @Option(names = "--config",
      description = "TOML file with settings (keys are the options' names without the dashes); "
          + "options given on the command line win over the file. See docs/operators.md.")
  Path config;

  @Option(names = "--print-config",
      description = "Print the effective configuration (file, options, defaults) as TOML and exit.")
  boolean printConfig;

  /**
   * Reads the config file, if one was given, into the options of {@code cmd} that its command
   * line left alone, and checks the log level.
   *
   * @throws ConfigException naming the key, file and line (or the flag) of a bad value
   */
  public ConfigFile load(CommandLine cmd) throws ConfigException {
    ConfigFile settings = ConfigFile.of(cmd, "--config", "--print-config");
    if (config != null) {
      settings.load(config);
    }
    settings.check("log-level", (String v) -> checkLogLevel(v));
    return settings;
  }

  /** Whether to print the configuration and exit rather than run. */
  public boolean printConfig() {
    return printConfig;
  }

  /** The config file given, if any. */
  public Optional<Path> config() {
    return Optional.ofNullable(config);
  }

  /** {@code HOST:PORT} of the metrics listener, if one is wanted. */
  public Optional<String> metricsListen() {
    return Optional.ofNullable(metricsListen);
  }

  /** One of error, warn, info, debug. */
  public String logLevel() {
    return logLevel;
  }

  /**
   * Makes {@link #logLevel} the level of the process's own logs (slf4j-simple's default level;
   * loggers with a level of their own, such as gRPC's and Netty's, keep it), and sends
   * java.util.logging through slf4j, one line per record (see {@link OneLineLogs}). Call before
   * anything logs: slf4j-simple reads the level once.
   */
  public void applyLogLevel() {
    checkLogLevel(logLevel);
    System.setProperty("org.slf4j.simpleLogger.defaultLogLevel", logLevel);
    OneLineLogs.routeJavaUtilLogging();
  }

  private static void checkLogLevel(String level) {
    if (!LOG_LEVELS.contains(level)) {
      throw new IllegalArgumentException("must be one of error, warn, info, debug; got '" + level + "'");
    }
  }
}
