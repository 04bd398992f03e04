package org.ferry.server;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.net.InetAddress;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.ferry.ops.config.ConfigException;
import org.ferry.ops.config.ConfigFile;
import org.ferry.ops.config.OperatorOptions;
import org.ferry.proto.HostPort;
import org.ferry.relay.Carrier;
import org.ferry.relay.RelayMain;
import org.ferry.server.internal.admin.AdminCommands;
import org.ferry.server.internal.federation.FederationOptions;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** {@code ferry server}: runs a home server in the foreground until SIGTERM or Ctrl-C. */
@Command(
    name = "ferry server",
    mixinStandardHelpOptions = true,
    description = "Runs a Ferry home server in the foreground.",
    subcommands = {AdminCommands.Status.class, AdminCommands.Backup.class, AdminCommands.Restore.class})
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

  @Option(names = "--default-ttl", defaultValue = "21d", converter = DurationConverter.class,
      description = "Longest an envelope waits for delivery (senders may ask for less), "
          + "such as 21d, 36h or 90m; default ${DEFAULT-VALUE}.")
  Duration defaultTtl;

  @Option(names = "--mailbox-max-envelopes", defaultValue = "10000",
      description = "Most envelopes waiting in one mailbox; default ${DEFAULT-VALUE}.")
  long mailboxEnvelopes;

  @Option(names = "--mailbox-max-bytes", defaultValue = "64M", converter = SizeConverter.class,
      description = "Most bytes waiting in one mailbox (K, M, G: binary units); default ${DEFAULT-VALUE}.")
  long mailboxBytes;

  @Option(names = "--storage-budget", defaultValue = "4G", converter = SizeConverter.class,
      description = "Most bytes waiting in all mailboxes together; default ${DEFAULT-VALUE}. "
          + "Leave about as much again free on disk for RocksDB.")
  long storageBudget;

  @Option(names = "--create-rate", defaultValue = "5",
      description = "Mailboxes made per second, sustained; default ${DEFAULT-VALUE}.")
  double createRate;

  @Option(names = "--create-burst", defaultValue = "100",
      description = "Mailboxes made at once after a quiet spell; default ${DEFAULT-VALUE}.")
  int createBurst;

  @Option(names = "--creation-token-file",
      description = "File whose first line is the token that anyone making a mailbox must give "
          + "(for a closed community). Default: no token needed.")
  Path creationTokenFile;

  @Option(names = "--carriers",
      description = "Also accept these carriers (from ws, poll, obfs4) for censored clients, "
          + "as a relay would, and print their bridge lines. Default: none.")
  String carriers;

  @Option(names = "--carrier-listen",
      description = "HOST:PORT of the carriers' web port (obfs4 takes the next port); "
          + "default: the listen host, the listen port + 1.")
  String carrierListen;

  @Option(names = "--fallback",
      description = "With --carriers: HOST:PORT of a real web server (plain HTTP, such as an nginx "
          + "on loopback) that gets every connection to the carriers' web port that is not a "
          + "carrier's. Default: a built-in imitation of nginx answers them.")
  String fallback;

  @Option(names = "--federation", defaultValue = "open",
      description = "Which servers this one federates with: open (any; unknown ones share one budget), "
          + "allowlist (only --federation-allow), off; default ${DEFAULT-VALUE}.")
  String federation;

  @Option(names = "--federation-allow", paramLabel = "FINGERPRINT",
      description = "A peer server's key fingerprint to allow, with a budget of its own (repeatable).")
  List<String> federationAllow;

  @Option(names = "--federation-deny", paramLabel = "FINGERPRINT",
      description = "A peer server's key fingerprint to refuse in every mode, both ways (repeatable).")
  List<String> federationDeny;

  @Option(names = "--peer-rate", defaultValue = "200",
      description = "Items per second each allowed or known peer may deliver (bursts of 10 s); default ${DEFAULT-VALUE}.")
  double peerRate;

  @Option(names = "--peer-bytes-rate", defaultValue = "8M", converter = SizeConverter.class,
      description = "Body bytes per second each allowed or known peer may deliver; default ${DEFAULT-VALUE}.")
  long peerBytesRate;

  @Option(names = "--unknown-peers-rate", defaultValue = "200",
      description = "Items per second all unknown peers together may deliver (open mode); default ${DEFAULT-VALUE}.")
  double unknownPeersRate;

  @Option(names = "--forward-rate", defaultValue = "50",
      description = "Forwarding calls per second each client may make (bursts of 10 s); default ${DEFAULT-VALUE}.")
  double forwardRate;

  @Option(names = "--federation-bind", paramLabel = "IP",
      description = "Source address of outgoing federation connections. Default: the system picks.")
  String federationBind;

  @Option(names = "--federation-proxy", paramLabel = "socks5://HOST:PORT",
      description = "SOCKS5 proxy for outgoing federation connections (for example Tor's SocksPort). Default: none.")
  String federationProxy;

  @Mixin OperatorOptions operator;

  /** {@link #federationProxy} and {@link #federationBind} as {@link #check} resolved them. */
  private InetSocketAddress federationProxyAddress;
  private InetAddress federationBindAddress;

  @Spec CommandSpec spec;

  /** Crash harness only: see FerryServer.Builder#unsafeAcknowledgeBeforeWriting. */
  @Option(names = "--unsafe-ack-before-write", hidden = true)
  boolean unsafeAckBeforeWrite;

  /**
   * gRPC logs through java.util.logging, and its lower levels report transport failures with
   * the bytes a client sent and, in places, its address. Probes must not fill an operator's log
   * or leave traces of who connected, so only severe gRPC events are logged. Held here so the
   * setting is not garbage collected.
   */
  private static final java.util.logging.Logger GRPC_LOG = java.util.logging.Logger.getLogger("io.grpc");

  public static void main(String[] args) {
    GRPC_LOG.setLevel(java.util.logging.Level.SEVERE);
    RelayMain.quietNetty();
    System.exit(new CommandLine(new ServerMain()).execute(args));
  }

  @Override
  public Integer call() throws Exception {
    HostPort at;
    try {
      ConfigFile settings = operator.load(spec.commandLine());
      at = check(settings);
      if (operator.printConfig()) {
        System.out.print(settings.print());
        return 0;
      }
    } catch (ConfigException e) {
      System.err.println("ferry server: " + e.getMessage());
      return 2;
    }
    operator.applyLogLevel();
    org.slf4j.LoggerFactory.getLogger(ServerMain.class).debug("log level {}; configuration from {}",
        operator.logLevel(), operator.config().map(Path::toString).orElse("options only"));
    String host = at.host();
    int port = at.port();
    FerryServer server;
    try {
      FerryServer.Builder builder = FerryServer.builder()
          .dataDirectory(data)
          .listen(host, port)
          .defaultTtl(defaultTtl)
          .mailboxQuota(mailboxEnvelopes, mailboxBytes)
          .storageBudget(storageBudget)
          .mailboxCreationRate(createRate, createBurst);
      if (advertise != null) {
        builder.advertisedHost(advertise);
      }
      if (creationTokenFile != null) {
        builder.creationToken(readToken(creationTokenFile));
      }
      if (carriers != null) {
        InetSocketAddress carrierAt = carrierListen != null
            ? RelayMain.parseHostPort("--carrier-listen", carrierListen)
            : new InetSocketAddress(host, port == 0 ? 0 : port + 1);
        builder.carriers(Carrier.parseList(carriers), carrierAt);
        if (fallback != null) {
          builder.carrierFallback(RelayMain.parseHostPort("--fallback", fallback));
        }
      }
      builder.federation(FederationOptions.Mode.valueOf(federation.toUpperCase(java.util.Locale.ROOT)))
          .peerRate(peerRate, peerBytesRate)
          .unknownPeersRate(unknownPeersRate)
          .forwardRate(forwardRate);
      if (federationAllow != null) {
        federationAllow.forEach(builder::federationAllow);
      }
      if (federationDeny != null) {
        federationDeny.forEach(builder::federationDeny);
      }
      if (federationProxyAddress != null) {
        builder.federationProxy(federationProxyAddress);
      }
      if (federationBindAddress != null) {
        builder.federationBind(federationBindAddress);
      }
      if (operator.metricsListen().isPresent()) {
        builder.metricsListen(RelayMain.parseHostPort("--metrics-listen", operator.metricsListen().get()));
      }
      if (unsafeAckBeforeWrite) {
        builder.unsafeAcknowledgeBeforeWriting(Duration.ofMillis(200));
      }
      server = builder.start();
    } catch (IllegalArgumentException e) {
      System.err.println("ferry server: " + e.getMessage());
      return 2;
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
    server.metricsAddress().ifPresent(m ->
        System.out.println("metrics: http://" + HostPort.format(m.getHostString(), m.getPort()) + "/metrics"));
    for (var line : server.bridgeLines()) {
      System.out.println("bridge: " + line);
    }
    System.out.println("ferry server ready: " + server.address());
    System.out.flush();
    server.awaitTermination();
    stopped.await();
    return 0;
  }

  /** Every option's range, naming the flag or the file's line that gave a bad value. */
  private HostPort check(ConfigFile settings) throws ConfigException {
    settings.check("data", (Path v) -> namesADirectory(v));
    settings.check("creation-token-file", (Path v) -> {
      if (!Files.isRegularFile(v) || !Files.isReadable(v)) {
        throw new IllegalArgumentException("cannot read " + v + " (missing, not a file, or not readable by this user)");
      }
    });
    settings.check("listen", (String v) -> HostPort.parse(v));
    settings.check("advertise", (String v) -> HostPort.checkHost(v));
    settings.check("mailbox-max-envelopes", (Long v) -> atLeast(1, v));
    settings.check("create-burst", (Integer v) -> atLeast(1, v));
    settings.check("carriers", (String v) -> Carrier.parseList(v));
    settings.check("carrier-listen", (String v) -> HostPort.parse(v));
    settings.check("fallback", (String v) -> HostPort.parse(v));
    settings.check("metrics-listen", (String v) -> HostPort.parse(v));
    settings.check("federation", (String v) -> {
      if (!List.of("open", "allowlist", "off").contains(v)) {
        throw new IllegalArgumentException("must be open, allowlist or off, got '" + v + "'");
      }
    });
    settings.check("federation-allow", (List<String> v) -> v.forEach(FerryServer.Builder::checkFingerprint));
    settings.check("federation-deny", (List<String> v) -> v.forEach(FerryServer.Builder::checkFingerprint));
    for (String rate : List.of("create-rate", "peer-rate", "unknown-peers-rate", "forward-rate")) {
      settings.check(rate, (Double v) -> {
        if (!(v > 0) || v.isInfinite()) {
          throw new IllegalArgumentException("must be a positive number, got " + v);
        }
      });
    }
    // Looked up (and bound) once, here: call() uses what the check found.
    settings.check("federation-proxy", (String v) -> federationProxyAddress = socks5(v));
    settings.check("federation-bind", (String v) -> federationBindAddress = localAddress(v));
    if (fallback != null && carriers == null) {
      throw new ConfigException(settings.describe("fallback") + ": needs carriers");
    }
    return HostPort.parse(listen);
  }

  /** {@code socks5://HOST:PORT}, the host looked up now. */
  static InetSocketAddress socks5(String url) {
    if (!url.startsWith("socks5://")) {
      throw new IllegalArgumentException("must be socks5://HOST:PORT, got '" + url + "'");
    }
    String rest = url.substring("socks5://".length());
    if (rest.contains("@")) {
      // Never echoed: what is before the @ may be a password.
      throw new IllegalArgumentException("a user name or password is not supported, give socks5://HOST:PORT");
    }
    HostPort at = HostPort.parse(rest);
    if (at.port() == 0) {
      throw new IllegalArgumentException("needs a port other than 0, got '" + url + "'");
    }
    InetSocketAddress address = new InetSocketAddress(at.host(), at.port());
    if (address.isUnresolved()) {
      throw new IllegalArgumentException("cannot resolve the proxy's host '" + at.host() + "'");
    }
    return address;
  }

  /**
   * An IP address this host has: outgoing federation connections can leave from it. Checked by
   * binding a socket to it, so that a typo or another host's address fails at start-up instead
   * of holding every forwarded item until its ttl.
   */
  static InetAddress localAddress(String ip) {
    if (!HostPort.isIpLiteral(ip)) {
      throw new IllegalArgumentException("must be an IP address of this host, got '" + ip + "'");
    }
    InetAddress address;
    try {
      address = InetAddress.getByName(HostPort.checkHost(ip));
    } catch (java.net.UnknownHostException e) {
      throw new IllegalArgumentException("must be an IP address of this host, got '" + ip + "'");
    }
    try (java.net.Socket probe = new java.net.Socket()) {
      probe.bind(new InetSocketAddress(address, 0));
    } catch (IOException e) {
      throw new IllegalArgumentException("'" + ip + "' is not an address of this host (" + e.getMessage() + ")");
    }
    return address;
  }

  /** An empty path would put the key and the store in whatever directory one runs in. */
  static void namesADirectory(Path data) {
    if (data.toString().isBlank()) {
      throw new IllegalArgumentException("must name a directory, got an empty path");
    }
  }

  static void atLeast(long least, long value) {
    if (value < least) {
      throw new IllegalArgumentException("must be at least " + least + ", got " + value);
    }
  }

  private static String readToken(Path file) throws IOException {
    String token;
    try {
      token = Files.readAllLines(file, StandardCharsets.UTF_8).stream().findFirst().orElse("").strip();
    } catch (IOException e) {
      throw new IOException("cannot read creation token file " + file + ": " + rootMessage(e), e);
    }
    if (token.isEmpty()) {
      throw new IllegalArgumentException("creation token file " + file + " is empty");
    }
    return token;
  }

  /** Durations as people write them: 21d, 36h, 90m, 45s. */
  static final class DurationConverter implements CommandLine.ITypeConverter<Duration> {
    @Override
    public Duration convert(String value) {
      Matcher m = Pattern.compile("(\\d{1,9})([dhms])").matcher(value.strip());
      if (!m.matches()) {
        throw new CommandLine.TypeConversionException(
            "expected a number and a unit (d, h, m, s), such as 21d; got '" + value + "'");
      }
      long n = Long.parseLong(m.group(1));
      Duration d = switch (m.group(2)) {
        case "d" -> Duration.ofDays(n);
        case "h" -> Duration.ofHours(n);
        case "m" -> Duration.ofMinutes(n);
        default -> Duration.ofSeconds(n);
      };
      if (d.isZero()) {
        throw new CommandLine.TypeConversionException("must be positive: '" + value + "'");
      }
      return d;
    }
  }

  /** Sizes in bytes, with optional binary suffixes K, M, G, T. */
  static final class SizeConverter implements CommandLine.ITypeConverter<Long> {
    @Override
    public Long convert(String value) {
      Matcher m = Pattern.compile("(\\d+)([KMGT]?)i?B?", Pattern.CASE_INSENSITIVE).matcher(value.strip());
      if (!m.matches()) {
        throw new CommandLine.TypeConversionException(
            "expected a size such as 64M or 4G; got '" + value + "'");
      }
      int shift = switch (m.group(2).toUpperCase(java.util.Locale.ROOT)) {
        case "K" -> 10;
        case "M" -> 20;
        case "G" -> 30;
        case "T" -> 40;
        default -> 0;
      };
      // Digits, but too many for any disk: out of range, not a malformed size.
      long n = m.group(1).length() > 15 ? Long.MAX_VALUE : Long.parseLong(m.group(1));
      if (n <= 0 || n > (1L << 50) >> shift) {
        throw new CommandLine.TypeConversionException("size out of range (1 byte to 1 PiB): '" + value + "'");
      }
      return n << shift;
    }
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
