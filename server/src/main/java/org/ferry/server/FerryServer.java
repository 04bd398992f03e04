package org.ferry.server;

import io.grpc.BindableService;
import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.ServerCallExecutorSupplier;
import io.grpc.Server;
import io.grpc.ServerInterceptor;
import io.grpc.ServerInterceptors;
import io.grpc.ServerServiceDefinition;
import io.grpc.netty.GrpcSslContexts;
import io.grpc.netty.NettyServerBuilder;
import io.grpc.protobuf.services.HealthStatusManager;
import io.grpc.protobuf.services.ProtoReflectionServiceV1;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.nio.NioIoHandler;
import io.netty.handler.ssl.OpenSsl;
import io.netty.util.internal.PlatformDependent;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslContextBuilder;
import io.netty.handler.ssl.SslProvider;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.Executor;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.LongSupplier;
import org.ferry.datadir.DataDirectoryLock;
import org.ferry.proto.ServerAddress;
import org.ferry.proto.v1.MailboxesGrpc;
import java.util.LinkedHashMap;
import java.util.Map;
import org.ferry.server.internal.admin.AdminChannel;
import org.ferry.server.internal.admin.StatusReport;
import org.ferry.server.internal.backup.ServerBackup;
import org.ferry.server.internal.grpc.ErrorMappingInterceptor;
import org.ferry.server.internal.federation.Federation;
import org.ferry.server.internal.federation.FederationOptions;
import io.netty.handler.ssl.ClientAuth;
import java.net.InetAddress;
import java.util.HashSet;
import org.ferry.server.internal.grpc.InvitationGrpcService;
import org.ferry.server.internal.grpc.CappedServerChannel;
import org.ferry.server.internal.grpc.MailboxGrpcService;
import org.ferry.server.internal.grpc.StreamLimits;
import io.prometheus.metrics.model.registry.PrometheusRegistry;
import org.ferry.ops.metrics.MetricsEndpoint;
import org.ferry.proto.HostPort;
import org.ferry.server.internal.mailbox.MailboxManager;
import org.ferry.server.internal.metrics.ServerMetrics;
import org.ferry.server.internal.mailbox.ServerLimits;
import org.ferry.server.internal.store.MailboxStore;
import org.ferry.server.internal.time.ServerClock;
import org.ferry.proto.BridgeLine;
import org.ferry.relay.Carrier;
import org.ferry.relay.Relay;
import org.ferry.relay.internal.tls.TlsIdentity;
import org.ferry.server.internal.util.Bytes;
import org.ferry.ops.log.OneLineLogs;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A Ferry home server: gRPC over Netty with TLS 1.3 under the server's own pinned key, and a
 * RocksDB store in its data directory.
 *
 * <pre>{@code
 * try (FerryServer server = FerryServer.builder().dataDirectory(dir).listen("127.0.0.1", 7443).start()) {
 *   System.out.println(server.address());
 *   server.awaitTermination();
 * }
 * }</pre>
 *
 * <p>The data directory holds {@code identity/} (the TLS key, which clients and peer servers pin,
 * and the federation routing key: back it up),
 * {@code store/} (RocksDB), {@code clock} (the latest time the server saw; see
 * {@link org.ferry.server.internal.time.ServerClock}) and {@code .lock}, which a running server
 * holds so that no second process uses the directory.
 */
public final class FerryServer implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(FerryServer.class);

  /** How long an envelope waits for delivery unless its sender asks for less. */
  public static final Duration DEFAULT_TTL = Duration.ofDays(21);
  /**
   * BoringSSL (netty-tcnative) when its native library loads here, else the JDK's TLS: same
   * protocol (TLS 1.3 only), same key, much less CPU per record.
   */
  static SslProvider tlsProvider() {
    if (OpenSsl.isAvailable()) {
      return SslProvider.OPENSSL;
    }
    log.warn("BoringSSL unavailable ({}); using the JDK's TLS", OpenSsl.unavailabilityCause().toString());
    return SslProvider.JDK;
  }

  /** Calls that never block a thread: run on the transport's event loop. */
  private static final Set<String> NON_BLOCKING_METHODS = Set.of(
      MailboxesGrpc.getSendMethod().getFullMethodName(),
      MailboxesGrpc.getReceiveMethod().getFullMethodName(),
      MailboxesGrpc.getSendStreamMethod().getFullMethodName());

  /** Calls open at once on one connection, at most (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS). */
  static final int MAX_CALLS_PER_CONNECTION = 128;

  /** gRPC message limit: the largest envelope plus room for the request around it. */
  static final int MAX_INBOUND_MESSAGE = 128 * 1024;

  private final Server grpcServer;
  private final HealthStatusManager health;
  private final MailboxStore store;
  private final ExecutorService deliveryExecutor;
  private final ExecutorService blockingExecutor;
  private final ScheduledExecutorService background;
  private final ServerAddress address;
  private final Relay carriers;
  private final EventLoopGroup[] eventLoops;
  private final DataDirectoryLock lock;
  private final ServerClock clock;
  private final Path clockFile;
  private final MetricsEndpoint metrics;
  private final String metricsHost;
  private final Federation federation;
  private final ScheduledExecutorService federationLanes;
  /** The local admin channel ({@code ferry server status}, {@code backup}); null if it could not start. */
  private AdminChannel admin;
  private boolean closed;

  private FerryServer(
      Server grpcServer,
      HealthStatusManager health,
      MailboxStore store,
      ExecutorService deliveryExecutor,
      ExecutorService blockingExecutor,
      ScheduledExecutorService background,
      ServerAddress address,
      Relay carriers,
      DataDirectoryLock lock,
      ServerClock clock,
      Path clockFile,
      MetricsEndpoint metrics,
      String metricsHost,
      Federation federation,
      ScheduledExecutorService federationLanes,
      EventLoopGroup... eventLoops) {
    this.federation = federation;
    this.federationLanes = federationLanes;
    this.metrics = metrics;
    this.metricsHost = metricsHost;
    this.eventLoops = eventLoops;
    this.lock = lock;
    this.clock = clock;
    this.clockFile = clockFile;
    this.blockingExecutor = blockingExecutor;
    this.carriers = carriers;
    this.grpcServer = grpcServer;
    this.health = health;
    this.store = store;
    this.deliveryExecutor = deliveryExecutor;
    this.background = background;
    this.address = address;
  }

  public static Builder builder() {
    return new Builder();
  }

  /** The address clients use: advertised host, bound port, and the key's fingerprint. */
  public ServerAddress address() {
    return address;
  }

  /** Where Prometheus metrics are served ({@code GET /metrics}), if {@link Builder#metricsListen} asked for it. */
  public Optional<InetSocketAddress> metricsAddress() {
    return metrics == null ? Optional.empty()
        : Optional.of(new InetSocketAddress(metricsHost, metrics.port()));
  }

  /** Bridge lines of the carriers this server accepts itself; empty unless configured. */
  public List<BridgeLine> bridgeLines() {
    return carriers == null ? List.of() : carriers.bridgeLines();
  }

  /** Blocks until the server has shut down. */
  public void awaitTermination() throws InterruptedException {
    grpcServer.awaitTermination();
  }

  /**
   * Stops accepting calls, gives running ones a moment to finish, then closes the store. What
   * was acknowledged is on disk already; if calls are still running after the grace period, the
   * store is left for the process exit to release rather than closed under them.
   */
  @Override
  public synchronized void close() {
    if (closed) {
      return;
    }
    closed = true;
    if (admin != null) {
      admin.close();
    }
    if (metrics != null) {
      metrics.close();
    }
    if (carriers != null) {
      carriers.close();
    }
    health.enterTerminalState();
    federation.close();
    federationLanes.shutdownNow();
    grpcServer.shutdown();
    boolean quiet = false;
    try {
      if (!grpcServer.awaitTermination(5, TimeUnit.SECONDS)) {
        grpcServer.shutdownNow();
      }
      quiet = grpcServer.awaitTermination(5, TimeUnit.SECONDS);
      deliveryExecutor.shutdown();
      blockingExecutor.shutdown();
      background.shutdown();
      quiet &= deliveryExecutor.awaitTermination(5, TimeUnit.SECONDS);
      quiet &= blockingExecutor.awaitTermination(5, TimeUnit.SECONDS);
      quiet &= background.awaitTermination(5, TimeUnit.SECONDS);
      quiet &= federationLanes.awaitTermination(5, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      grpcServer.shutdownNow();
      Thread.currentThread().interrupt();
    }
    deliveryExecutor.shutdownNow();
    blockingExecutor.shutdownNow();
    background.shutdownNow();
    for (EventLoopGroup group : eventLoops) {
      group.shutdownGracefully(0, 5, TimeUnit.SECONDS);
    }
    if (quiet) {
      saveClock(clock, clockFile);
      store.close();
      lock.close();
      log.info("ferry server stopped");
    } else {
      log.warn("calls still running after shutdown; leaving the store to be released at exit");
    }
  }

  /** The server's now, for the next start to begin from; a failure is logged and tried again later. */
  private static void saveClock(ServerClock clock, Path file) {
    try {
      clock.save(file);
    } catch (IOException e) {
      log.warn("cannot save the server's clock to {}: {}", file, e.getMessage());
    }
  }

  /** Configures a server; {@link #start()} makes state on first use. */
  public static final class Builder {
    private Path dataDirectory;
    private String host = "127.0.0.1";
    private int port = 7443;
    private String advertisedHost;
    private InetSocketAddress carrierListen;
    private Set<Carrier> carrierKinds = Set.of();
    private InetSocketAddress carrierFallback;
    private Clock clock = Clock.systemUTC();
    private LongSupplier ticker = System::nanoTime;
    private Duration defaultTtl = DEFAULT_TTL;
    private ServerLimits limits = ServerLimits.DEFAULTS;
    private Duration sweepInterval = Duration.ofMinutes(1);
    private Duration unsafeWriteDelay;
    private int maxConnections = defaultMaxConnections(Runtime.getRuntime().maxMemory());
    private InetSocketAddress metricsListen;
    private final List<ServerInterceptor> interceptors = new ArrayList<>();
    private FederationOptions.Mode federationMode = FederationOptions.DEFAULTS.mode();
    private final Set<String> federationAllow = new HashSet<>();
    private final Set<String> federationDeny = new HashSet<>();
    private double peerItemsPerSecond = FederationOptions.DEFAULTS.peerItemsPerSecond();
    private double peerBytesPerSecond = FederationOptions.DEFAULTS.peerBytesPerSecond();
    private double unknownPeersPerSecond = FederationOptions.DEFAULTS.unknownItemsPerSecond();
    private double forwardPerSecond = FederationOptions.DEFAULTS.forwardItemsPerSecond();
    private InetAddress federationBind;
    private InetSocketAddress federationProxy;
    private Duration retryInitial = FederationOptions.DEFAULTS.retryInitial();
    private Duration retryMax = FederationOptions.DEFAULTS.retryMax();
    private long maxQueuedPerPeer = FederationOptions.DEFAULTS.maxQueuedPerPeer();

    private Builder() {}

    /** Required: where the key and the store live. Created if missing. */
    public Builder dataDirectory(Path dataDirectory) {
      this.dataDirectory = Objects.requireNonNull(dataDirectory, "dataDirectory");
      return this;
    }

    /** Where to listen; default 127.0.0.1:7443. Port 0 picks a free port. */
    public Builder listen(String host, int port) {
      if (port < 0 || port > 65535) {
        throw new IllegalArgumentException("port out of range: " + port);
      }
      this.host = Objects.requireNonNull(host, "host");
      this.port = port;
      return this;
    }

    /**
     * The host clients should dial, if not the listen host (for example the public IP when
     * listening on 0.0.0.0).
     */
    public Builder carriers(Set<Carrier> kinds, InetSocketAddress listen) {
      if (kinds.isEmpty()) {
        throw new IllegalArgumentException("at least one carrier is needed");
      }
      this.carrierKinds = Set.copyOf(kinds);
      this.carrierListen = Objects.requireNonNull(listen, "listen");
      return this;
    }

    /**
     * A real web server that gets every connection to the carriers' web port that is not a
     * carrier's (see {@link Relay.Builder#fallback}). Default: none, the built-in decoy answers
     * them. Needs {@link #carriers}: without them {@link #start} throws IllegalStateException.
     */
    public Builder carrierFallback(InetSocketAddress webServer) {
      this.carrierFallback = Objects.requireNonNull(webServer, "webServer");
      return this;
    }

    public Builder advertisedHost(String advertisedHost) {
      this.advertisedHost = Objects.requireNonNull(advertisedHost, "advertisedHost");
      return this;
    }

    /**
     * The wall clock; default the system UTC clock. Expiries follow it forward (catching up with
     * a step forward at most one extra second per second) and never back; see {@code
     * docs/operators.md}, "Clock steps".
     */
    public Builder clock(Clock clock) {
      this.clock = Objects.requireNonNull(clock, "clock");
      return this;
    }

    /**
     * Monotonic nanoseconds for durations and rates, as {@link System#nanoTime()} (the default):
     * only differences count. Tests that move the wall clock give a ticker that moves with it.
     */
    public Builder ticker(LongSupplier nanoTime) {
      this.ticker = Objects.requireNonNull(nanoTime, "nanoTime");
      return this;
    }

    /** Longest time an envelope waits for delivery; default {@link #DEFAULT_TTL}. */
    public Builder defaultTtl(Duration defaultTtl) {
      if (defaultTtl.isNegative() || defaultTtl.isZero()) {
        throw new IllegalArgumentException("default ttl must be positive: " + defaultTtl);
      }
      this.defaultTtl = defaultTtl;
      return this;
    }

    /**
     * Most envelopes, and most body bytes, that may wait in one mailbox; default 10,000 and
     * 64 MiB. A send beyond either fails with RESOURCE_EXHAUSTED (MAILBOX_FULL).
     */
    public Builder mailboxQuota(long envelopes, long bytes) {
      limits = new ServerLimits(envelopes, bytes, limits.queuedBytes(), limits.createPerSecond(),
          limits.createBurst(), limits.creationTokenHash());
      return this;
    }

    /**
     * Most envelope body bytes waiting in all mailboxes together; default 4 GiB. A send beyond
     * it fails with RESOURCE_EXHAUSTED (SERVER_FULL). Leave room on disk for RocksDB's own
     * overhead: about twice this while compactions run.
     */
    public Builder storageBudget(long bytes) {
      limits = new ServerLimits(limits.mailboxEnvelopes(), limits.mailboxBytes(), bytes,
          limits.createPerSecond(), limits.createBurst(), limits.creationTokenHash());
      return this;
    }

    /**
     * How fast mailboxes may be made, by anyone: {@code burst} at once, then
     * {@code perSecond}; default 5 per second, burst 100. Beyond it CreateMailbox fails with
     * RESOURCE_EXHAUSTED (RATE_LIMITED) and a retry delay.
     */
    public Builder mailboxCreationRate(double perSecond, int burst) {
      limits = new ServerLimits(limits.mailboxEnvelopes(), limits.mailboxBytes(),
          limits.queuedBytes(), perSecond, burst, limits.creationTokenHash());
      return this;
    }

    /**
     * Requires this token of anyone who makes a mailbox (a server for a closed community).
     * Only its SHA-256 is kept. Default: no token needed.
     */
    public Builder creationToken(String token) {
      if (token.isEmpty() || token.length() > 256) {
        throw new IllegalArgumentException("creation token must be 1 to 256 characters");
      }
      limits = new ServerLimits(limits.mailboxEnvelopes(), limits.mailboxBytes(),
          limits.queuedBytes(), limits.createPerSecond(), limits.createBurst(),
          Optional.of(Bytes.sha256(token.getBytes(StandardCharsets.UTF_8))));
      return this;
    }

    /** How often expired envelopes and invitations are removed; default one minute. */
    public Builder sweepInterval(Duration interval) {
      if (interval.isNegative() || interval.isZero()) {
        throw new IllegalArgumentException("sweep interval must be positive: " + interval);
      }
      this.sweepInterval = interval;
      return this;
    }

    /**
     * For the crash harness only: acknowledge each send at once and write it {@code delay}
     * later, so that a kill loses acknowledged messages and the harness can show it notices.
     */
    public Builder unsafeAcknowledgeBeforeWriting(Duration delay) {
      this.unsafeWriteDelay = Objects.requireNonNull(delay, "delay");
      return this;
    }

    /**
     * Adds an interceptor around Ferry's services (metrics, tracing, fault injection in tests).
     * It sees ids and sizes but no plaintext; it must not log client addresses.
     */
    public Builder interceptor(ServerInterceptor interceptor) {
      interceptors.add(Objects.requireNonNull(interceptor, "interceptor"));
      return this;
    }

    /**
     * Client connections open at once, at most. At the cap a new connection replaces the one that
     * has done least (idle for 2 s or more, fewest bytes sent); if none is idle, the new one is
     * closed as soon as it is accepted (see {@code CappedServerChannel}).
     * Default: one per 256 KiB of the JVM's maximum heap, from 256 to 65,536 (1,024 for a
     * 256 MiB heap).
     *
     * @throws IllegalArgumentException if not positive
     */
    public Builder maxConnections(int maxConnections) {
      if (maxConnections < 1) {
        throw new IllegalArgumentException("maxConnections must be positive: " + maxConnections);
      }
      this.maxConnections = maxConnections;
      return this;
    }

    /**
     * Serves Prometheus metrics (text format, {@code GET /metrics}) over plain HTTP on
     * {@code address}; port 0 picks one (see {@link FerryServer#metricsAddress}). No
     * authentication: keep it on loopback or a private network. Default: no metrics listener,
     * and the gRPC calls are not counted. The metrics are listed in docs/operators.md.
     */
    public Builder metricsListen(InetSocketAddress address) {
      this.metricsListen = Objects.requireNonNull(address, "address");
      return this;
    }

    /**
     * Which servers this one federates with: {@code OPEN} (default: any, unknown ones under one
     * shared budget, see {@link #unknownPeersRate}), {@code ALLOWLIST} (only those given to
     * {@link #federationAllow}), {@code OFF} (none; Forward to another server fails with
     * FAILED_PRECONDITION PEER_REFUSED, peers' calls with PERMISSION_DENIED PEER_REFUSED).
     */
    public Builder federation(FederationOptions.Mode mode) {
      this.federationMode = Objects.requireNonNull(mode, "mode");
      return this;
    }

    /**
     * A peer server always allowed, with a budget of its own ({@link #peerRate}): its key
     * fingerprint as in its address (43 characters of base64url).
     *
     * @throws IllegalArgumentException if it is not a fingerprint
     */
    public Builder federationAllow(String fingerprint) {
      federationAllow.add(checkFingerprint(fingerprint));
      return this;
    }

    /** A peer server refused in every mode, both ways. @throws IllegalArgumentException if not a fingerprint */
    public Builder federationDeny(String fingerprint) {
      federationDeny.add(checkFingerprint(fingerprint));
      return this;
    }

    static String checkFingerprint(String fingerprint) {
      byte[] fp;
      try {
        fp = java.util.Base64.getUrlDecoder().decode(fingerprint.strip());
      } catch (IllegalArgumentException e) {
        fp = new byte[0];
      }
      if (fp.length != 32) {
        throw new IllegalArgumentException("not a key fingerprint (43 characters of base64url): '" + fingerprint + "'");
      }
      return java.util.Base64.getUrlEncoder().withoutPadding().encodeToString(fp);
    }

    /**
     * Each allowed or known peer's budget for what it delivers here: items per second and body
     * bytes per second (bursts of ten seconds' worth); default 200 items/s, 8 MiB/s. Beyond it
     * its calls fail with RESOURCE_EXHAUSTED RATE_LIMITED and a retry delay.
     */
    public Builder peerRate(double itemsPerSecond, double bytesPerSecond) {
      this.peerItemsPerSecond = positive(itemsPerSecond, "peer rate");
      this.peerBytesPerSecond = positive(bytesPerSecond, "peer bytes rate");
      return this;
    }

    /** The one budget all unknown peers share in open mode, items per second; default 200. */
    public Builder unknownPeersRate(double itemsPerSecond) {
      this.unknownPeersPerSecond = positive(itemsPerSecond, "unknown peers rate");
      return this;
    }

    /** Each client's budget for Forward, ForwardTake and GetRoutingKey, calls per second; default 50 (burst 500). */
    public Builder forwardRate(double perSecond) {
      this.forwardPerSecond = positive(perSecond, "forward rate");
      return this;
    }

    /** Source address of outgoing federation connections (one of this host's addresses); default any. */
    public Builder federationBind(InetAddress source) {
      this.federationBind = Objects.requireNonNull(source, "source");
      return this;
    }

    /**
     * A SOCKS5 proxy (RFC 1928, no authentication; for example Tor's SocksPort) for outgoing
     * federation connections, so that peers see the proxy's exit instead of this server's address.
     * Default: none, peers are dialled directly.
     */
    public Builder federationProxy(InetSocketAddress socks5) {
      this.federationProxy = Objects.requireNonNull(socks5, "socks5");
      return this;
    }

    /**
     * Delivery backoff after a failed call to a peer: a random delay (full jitter) up to
     * {@code initial}, doubling per failure up to {@code max}; default 1 s to 5 min.
     *
     * @throws IllegalArgumentException if {@code initial} is not positive or {@code max} is less
     */
    public Builder federationRetry(Duration initial, Duration max) {
      if (initial.isNegative() || initial.isZero() || max.compareTo(initial) < 0) {
        throw new IllegalArgumentException("retry backoff must be positive, its cap at least its start: "
            + initial + ", " + max);
      }
      this.retryInitial = initial;
      this.retryMax = max;
      return this;
    }

    /**
     * Most items queued for one destination server; default 100,000. Beyond it Forward fails
     * with RESOURCE_EXHAUSTED PEER_QUEUE_FULL. Outbound bytes count against {@link #storageBudget}.
     */
    public Builder maxQueuedPerPeer(long items) {
      if (items < 1) {
        throw new IllegalArgumentException("max queued per peer must be positive: " + items);
      }
      this.maxQueuedPerPeer = items;
      return this;
    }

    private static double positive(double v, String what) {
      if (!(v > 0) || Double.isInfinite(v)) {
        throw new IllegalArgumentException(what + " must be a positive number: " + v);
      }
      return v;
    }

    static int defaultMaxConnections(long maxHeapBytes) {
      return (int) Math.max(256, Math.min(65_536, maxHeapBytes / (256 * 1024)));
    }

    /**
     * Takes the data directory's lock (held until {@link FerryServer#close}), opens the store,
     * loads or makes the key, and starts listening.
     *
     * @throws org.ferry.datadir.DataDirectoryInUseException if another process has the directory
     * @throws IOException if the key, the store or the port cannot be opened
     */
    public FerryServer start() throws IOException {
      if (dataDirectory == null) {
        throw new IllegalStateException("dataDirectory is required");
      }
      if (carrierFallback != null && carrierListen == null) {
        throw new IllegalStateException("a carrier fallback needs carriers");
      }
      if (carrierFallback != null) {
        // Before anything is written: a bad fallback must not leave a half-made data directory.
        Relay.checkFallback(carrierFallback, carrierListen, carrierKinds);
      }
      // Before anything is made or changed in the directory: the loser of two servers started
      // at once must not replace the winner's key.
      DataDirectoryLock lock = DataDirectoryLock.acquire(dataDirectory);
      try {
        return start(lock);
      } catch (IOException | RuntimeException e) {
        lock.close();
        throw e;
      }
    }

    /**
     * A store whose key is gone (a restore cut off before its last step, a store copied without
     * identity/) would start under a new key, which every client's pin refuses: say so instead.
     */
    private static void refuseStoreWithoutKey(Path dataDirectory) throws IOException {
      Path store = dataDirectory.resolve("store");
      if (Files.isDirectory(store) && !Files.exists(dataDirectory.resolve("identity"))) {
        boolean used;
        try (java.util.stream.Stream<Path> files = Files.list(store)) {
          used = files.findAny().isPresent();
        }
        if (used) {
          throw new IOException(dataDirectory + " holds a store but not its key (identity/): a new key would"
              + " break every client's pin. Restore the whole backup again (ferry server restore), or put"
              + " identity/ back; nothing was changed");
        }
      }
    }

    private FerryServer start(DataDirectoryLock lock) throws IOException {
      refuseStoreWithoutKey(dataDirectory);
      Path clockFile = dataDirectory.resolve("clock");
      // Backups a killed backup command never took.
      ServerBackup.removeStaged(dataDirectory);
      ServerClock serverClock = new ServerClock(clock, ticker, ServerClock.load(clockFile));
      serverClock.save(clockFile);
      SecureRandom random = new SecureRandom();
      TlsIdentity identity =
          TlsIdentity.loadOrCreate(dataDirectory.resolve("identity"), "server", "ferry-server", random);
      SslContext ssl =
          GrpcSslContexts.configure(
                  SslContextBuilder.forServer(identity.privateKey(), identity.certificate()),
                  tlsProvider())
              .protocols("TLSv1.3")
              // Peer servers present their key (the Federation service requires it); clients
              // present none, and need none.
              .clientAuth(ClientAuth.OPTIONAL)
              .trustManager(Federation.clientCertificateTrust())
              .build();
      MailboxStore store = MailboxStore.open(dataDirectory.resolve("store"));
      ExecutorService deliveryExecutor = Executors.newFixedThreadPool(
          Math.max(2, Runtime.getRuntime().availableProcessors()), daemonThreads("ferry-delivery"));
      ExecutorService blockingExecutor = Executors.newCachedThreadPool(daemonThreads("ferry-calls"));
      ScheduledExecutorService background =
          Executors.newSingleThreadScheduledExecutor(daemonThreads("ferry-background"));
      ScheduledExecutorService federationLanes =
          Executors.newScheduledThreadPool(2, daemonThreads("ferry-federation"));
      // Our own event loops, so that the listening channel can be ours (CappedServerChannel).
      EventLoopGroup boss = new MultiThreadIoEventLoopGroup(1, daemonThreads("ferry-accept"), NioIoHandler.newFactory());
      EventLoopGroup workers = new MultiThreadIoEventLoopGroup(0, daemonThreads("ferry-io"), NioIoHandler.newFactory());
      PrometheusRegistry registry = metricsListen != null ? new PrometheusRegistry() : null;
      ServerMetrics metrics = registry != null ? ServerMetrics.register(registry) : ServerMetrics.unread();
      if (registry != null) {
        store.observeCommits(metrics::committed);
        metrics.queue(store::queuedEnvelopes, store::queuedBytes);
        metrics.rocksDb(store.columnFamilies(), store::longProperty);
      }
      try {
        MailboxManager mailboxes =
            new MailboxManager(store, serverClock, random, defaultTtl, limits);
        if (unsafeWriteDelay != null) {
          log.warn("UNSAFE: sends are acknowledged before they are written; for crash tests only");
          mailboxes.acknowledgeBeforeWriting(
              write -> background.schedule(write, unsafeWriteDelay.toNanos(), TimeUnit.NANOSECONDS));
        }
        FederationOptions federationOptions = new FederationOptions(federationMode, federationAllow,
            federationDeny, peerItemsPerSecond, peerBytesPerSecond, unknownPeersPerSecond, forwardPerSecond,
            Optional.ofNullable(federationBind), Optional.ofNullable(federationProxy), retryInitial, retryMax, maxQueuedPerPeer);
        Federation federation = Federation.start(dataDirectory.resolve("identity"), identity, mailboxes, store,
            serverClock, federationOptions, metrics, random, federationLanes);
        background.scheduleWithFixedDelay(
            () -> {
              sweep(mailboxes, metrics);
              sweepFederation(federation);
              saveClock(serverClock, clockFile);
            },
            sweepInterval.toNanos(), sweepInterval.toNanos(), TimeUnit.NANOSECONDS);
        HealthStatusManager health = new HealthStatusManager();
        ErrorMappingInterceptor errors = new ErrorMappingInterceptor();
        List<ServerInterceptor> outer = new ArrayList<>(interceptors);
        if (registry != null) {
          outer.add(metrics.interceptor());
        }
        StreamLimits streamLimits =
            StreamLimits.forMemory(PlatformDependent.maxDirectMemory(), Runtime.getRuntime().maxMemory());
        CappedServerChannel.Connections openConnections = new CappedServerChannel.Connections();
        int connectionCap = maxConnections;
        NettyServerBuilder grpcBuilder =
            NettyServerBuilder.forAddress(new InetSocketAddress(host, port))
                .bossEventLoopGroup(boss)
                .workerEventLoopGroup(workers)
                .channelFactory(() -> new CappedServerChannel(connectionCap, openConnections))
                .sslContext(ssl)
                // Send and Receive never block (writes go through the store's group commit,
                // streams through their own executor): they run on the event loop, with no
                // hand-off per call. Calls that write synchronously get a thread of their own.
                .directExecutor()
                .callExecutor(new ServerCallExecutorSupplier() {
                  @Override
                  public <ReqT, RespT> Executor getExecutor(ServerCall<ReqT, RespT> call, Metadata headers) {
                    return NON_BLOCKING_METHODS.contains(call.getMethodDescriptor().getFullMethodName())
                        ? null : blockingExecutor;
                  }
                })
                .maxInboundMessageSize(MAX_INBOUND_MESSAGE)
                .permitKeepAliveTime(30, TimeUnit.SECONDS)
                // Calls at once on one connection (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS); a
                // connection with no call for this long is closed (clients reconnect by themselves).
                .maxConcurrentCallsPerConnection(MAX_CALLS_PER_CONNECTION)
                .maxConnectionIdle(15, TimeUnit.MINUTES)
                .addTransportFilter(streamLimits.transportFilter())
                .intercept(streamLimits.interceptor())
                .addService(intercepted(
                    new MailboxGrpcService(mailboxes, deliveryExecutor, random, streamLimits, metrics),
                    errors, outer))
                .addService(intercepted(new InvitationGrpcService(mailboxes), errors, outer));
        for (ServerServiceDefinition service : federation.services(errors)) {
          grpcBuilder.addService(ServerInterceptors.intercept(service, outer));
        }
        Server grpc = grpcBuilder
                .addService(health.getHealthService())
                .addService(ProtoReflectionServiceV1.newInstance())
                .build()
                .start();
        int boundPort = ((InetSocketAddress) grpc.getListenSockets().get(0)).getPort();
        String shownHost = Optional.ofNullable(advertisedHost).orElse(host);
        ServerAddress address =
            new ServerAddress(
                shownHost, boundPort, ServerAddress.fingerprintOf(identity.certificate().getPublicKey()));
        Relay relay = null;
        PrometheusRegistry carrierRegistry = registry != null ? registry : new PrometheusRegistry();
        if (carrierListen != null) {
          try {
            Relay.Builder carriers = Relay.builder()
                .dataDirectory(dataDirectory.resolve("relay"))
                .listen(carrierListen)
                .upstream(new InetSocketAddress(
                    host.equals("0.0.0.0") || host.equals("::") ? "127.0.0.1" : host, boundPort))
                .carriers(carrierKinds)
                .publicHost(shownHost);
            if (carrierFallback != null) {
              carriers.fallback(carrierFallback);
            }
            // Counted in any case: status reads the open sessions by carrier.
            carriers.metrics(carrierRegistry);
            relay = carriers.start();
          } catch (IOException | RuntimeException e) {
            grpc.shutdownNow();
            throw e;
          }
        }
        MetricsEndpoint endpoint = null;
        if (registry != null) {
          try {
            endpoint = MetricsEndpoint.start(metricsListen, registry);
          } catch (IOException | RuntimeException e) {
            if (relay != null) {
              relay.close();
            }
            grpc.shutdownNow();
            throw new IOException("cannot listen for metrics on "
                + HostPort.format(metricsListen.getHostString(), metricsListen.getPort()) + ": " + e.getMessage(), e);
          }
        }
        FerryServer server = new FerryServer(grpc, health, store, deliveryExecutor, blockingExecutor, background,
            address, relay, lock, serverClock, clockFile, endpoint,
            metricsListen == null ? null : metricsListen.getHostString(), federation, federationLanes, boss, workers);
        StatusReport status = new StatusReport(address.toString(), ticker, openConnections::size,
            () -> StatusReport.carrierSessions(carrierRegistry, carrierKinds),
            streamLimits::openStreams, store::queuedEnvelopes, store::queuedBytes, limits.queuedBytes(),
            mailboxes.storageBudget()::usedBytes, store.diskSpace(), probeTargets(relay), federation::status);
        server.admin = startAdmin(dataDirectory, status, store, serverClock);
        return server;
      } catch (IOException | RuntimeException e) {
        boss.shutdownGracefully(0, 0, TimeUnit.SECONDS);
        workers.shutdownGracefully(0, 0, TimeUnit.SECONDS);
        deliveryExecutor.shutdownNow();
        blockingExecutor.shutdownNow();
        background.shutdownNow();
        federationLanes.shutdownNow();
        store.close();
        throw e;
      }
    }

    /** Each bridge line with the port the server itself dials to see that it answers. */
    private static List<StatusReport.Bridge> probeTargets(Relay relay) {
      List<StatusReport.Bridge> targets = new ArrayList<>();
      if (relay != null) {
        for (BridgeLine line : relay.bridgeLines()) {
          if (line.kind() == BridgeLine.Kind.OBFS4) {
            relay.obfs4Address().ifPresent(a -> targets.add(new StatusReport.Bridge(line, a)));
          } else {
            targets.add(new StatusReport.Bridge(line, relay.webAddress()));
          }
        }
      }
      return targets;
    }

    /**
     * The admin channel, answering {@code status} and {@code backup}; without it (a data
     * directory path too long for a socket) the server runs on and says so.
     */
    private static AdminChannel startAdmin(Path dataDirectory, StatusReport status, MailboxStore store,
        ServerClock clock) {
      Object oneBackupAtATime = new Object();
      Map<String, AdminChannel.Command> commands = new LinkedHashMap<>();
      commands.put("status", status::snapshot);
      commands.put("backup", () -> {
        synchronized (oneBackupAtATime) {
          Path staged = ServerBackup.stage(dataDirectory, store, clock::save);
          log.info("backup staged for the backup command");
          return Map.of("staged", staged.toAbsolutePath().toString());
        }
      });
      try {
        return AdminChannel.start(dataDirectory, commands);
      } catch (IOException e) {
        log.warn("no admin channel (ferry server status and backup will not reach this server): {}",
            e.getMessage());
        return null;
      }
    }

    /** A failed sweep is logged and tried again at the next interval. */
    private static void sweep(MailboxManager mailboxes, ServerMetrics metrics) {
      try {
        int removed = mailboxes.sweepExpired();
        metrics.expired(removed);
        if (removed > 0) {
          log.debug("removed {} expired envelopes", removed);
        }
      } catch (RuntimeException e) {
        log.error("expiry sweep failed: {}", OneLineLogs.describe(e));
      }
    }

    /** A failed federation sweep is logged and tried again at the next interval. */
    private static void sweepFederation(Federation federation) {
      try {
        int expired = federation.sweepExpired();
        if (expired > 0) {
          log.debug("{} outbound items expired", expired);
        }
      } catch (RuntimeException e) {
        log.error("federation expiry sweep failed: {}", OneLineLogs.describe(e));
      }
    }

    /** The error mapper innermost, so the added interceptors see final statuses. */
    private static ServerServiceDefinition intercepted(
        BindableService service, ErrorMappingInterceptor errors, List<ServerInterceptor> outer) {
      ServerServiceDefinition inner = ServerInterceptors.intercept(service, errors);
      return ServerInterceptors.intercept(inner, outer);
    }

    private static java.util.concurrent.ThreadFactory daemonThreads(String prefix) {
      AtomicInteger n = new AtomicInteger();
      return r -> {
        Thread t = new Thread(r, prefix + "-" + n.incrementAndGet());
        t.setDaemon(true);
        return t;
      };
    }
  }
}
