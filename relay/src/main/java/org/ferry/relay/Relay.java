package org.ferry.relay;

import io.netty.bootstrap.ServerBootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.nio.NioIoHandler;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import io.netty.handler.ssl.ApplicationProtocolConfig;
import io.netty.handler.ssl.ApplicationProtocolNames;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslContextBuilder;
import io.netty.handler.ssl.SslProvider;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.NetworkInterface;
import java.net.SocketException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Clock;
import java.util.ArrayList;
import java.util.Base64;
import java.util.EnumSet;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.ferry.proto.BridgeLine;
import org.ferry.proto.HostPort;
import org.ferry.proto.ServerAddress;
import org.ferry.relay.internal.http.Decoy;
import org.ferry.relay.internal.http.PollSessions;
import org.ferry.relay.internal.http.RelayHttpHandler;
import org.ferry.relay.internal.obfs4.Obfs4ServerTransport;
import io.prometheus.metrics.model.registry.PrometheusRegistry;
import org.ferry.relay.internal.pipe.CarrierMetrics;
import org.ferry.relay.internal.pipe.Fallback;
import org.ferry.relay.internal.pipe.Upstream;
import org.ferry.relay.internal.tls.TlsIdentity;
import org.ferry.datadir.DataDirectoryLock;
import org.ferry.datadir.PrivateFiles;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A stateless bridge: accepts carriers (WebSocket, HTTP polling, obfs4) and pipes their bytes to
 * one upstream server, whose TLS runs end to end inside them. It keeps nothing about clients and
 * logs nothing about them. Without the bridge secret its web port is a web site: with a
 * {@linkplain Builder#fallback fallback}, a real web server's, which gets every connection that
 * is not a carrier's; without one, a built-in imitation of a fresh nginx. Its obfs4 port
 * (obfs4proxy) answers nothing.
 *
 * <p>Its data directory holds only its own keys: the HTTPS key, the secret path, obfs4proxy's
 * state, and the bridge lines it printed ({@code bridges}).
 */
public final class Relay implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(Relay.class);

  private final EventLoopGroup boss;
  private final EventLoopGroup workers;
  private final List<Channel> listeners;
  private final PollSessions poll;
  private final Obfs4ServerTransport obfs4;
  private final List<BridgeLine> bridges;
  private final InetSocketAddress webAddress;
  private final DataDirectoryLock lock;

  private Relay(EventLoopGroup boss, EventLoopGroup workers, List<Channel> listeners,
      PollSessions poll, Obfs4ServerTransport obfs4, List<BridgeLine> bridges, InetSocketAddress webAddress,
      DataDirectoryLock lock) {
    this.lock = lock;
    this.boss = boss;
    this.workers = workers;
    this.listeners = listeners;
    this.poll = poll;
    this.obfs4 = obfs4;
    this.bridges = List.copyOf(bridges);
    this.webAddress = webAddress;
  }

  /**
   * Checks a fallback web server's address on its own: a resolvable host and a real port.
   *
   * @throws IllegalArgumentException naming the problem
   */
  public static void checkFallbackAddress(InetSocketAddress webServer) {
    if (webServer.isUnresolved()) {
      throw new IllegalArgumentException(
          "the fallback web server's host cannot be resolved: " + webServer.getHostString());
    }
    if (webServer.getPort() == 0) {
      throw new IllegalArgumentException("the fallback web server needs a port, not 0");
    }
  }

  /**
   * Checks a fallback against the web port it serves: that port must be open (a ws or poll
   * carrier), and the fallback must not be that port itself, which would splice every
   * connection back into the relay until it runs out of file descriptors.
   *
   * @throws IllegalArgumentException naming the problem
   */
  public static void checkFallback(InetSocketAddress webServer, InetSocketAddress webPort, Set<Carrier> carriers) {
    checkFallbackAddress(webServer);
    if (!carriers.contains(Carrier.WS) && !carriers.contains(Carrier.POLL)) {
      throw new IllegalArgumentException(
          "a fallback serves the web port, which only the ws and poll carriers open");
    }
    if (webPort.getPort() != 0 && webPort.getPort() == webServer.getPort()
        && (webServer.getAddress().equals(webPort.getAddress()) || isLocal(webServer.getAddress())
            && (webPort.getAddress() == null || webPort.getAddress().isAnyLocalAddress()
                || isLocal(webPort.getAddress())))) {
      throw new IllegalArgumentException(
          "the fallback web server is this relay's own web port " + webPort.getPort());
    }
  }

  private static boolean isLocal(InetAddress a) {
    try {
      return a.isLoopbackAddress() || a.isAnyLocalAddress() || NetworkInterface.getByInetAddress(a) != null;
    } catch (SocketException e) {
      return false;
    }
  }

  public static Builder builder() {
    return new Builder();
  }

  /** One line per carrier, in the order ws, poll, obfs4, for handing to clients. */
  public List<BridgeLine> bridgeLines() {
    return bridges;
  }

  /** Where the web port (WebSocket, polling, decoy) listens. */
  public InetSocketAddress webAddress() {
    return webAddress;
  }

  /** Where obfs4proxy listens, if obfs4 is on. */
  public Optional<InetSocketAddress> obfs4Address() {
    return Optional.ofNullable(obfs4).map(Obfs4ServerTransport::address);
  }

  /** Polling sessions open now. */
  public int pollSessions() {
    return poll == null ? 0 : poll.size();
  }

  @Override
  public void close() {
    for (Channel ch : listeners) {
      ch.close().syncUninterruptibly();
    }
    if (poll != null) {
      poll.closeAll();
    }
    if (obfs4 != null) {
      obfs4.close();
    }
    workers.shutdownGracefully(0, 2, TimeUnit.SECONDS).syncUninterruptibly();
    boss.shutdownGracefully(0, 2, TimeUnit.SECONDS).syncUninterruptibly();
    lock.close();
  }

  /** Configures a relay; {@link #start} makes it. */
  public static final class Builder {
    private Path dataDirectory;
    private InetSocketAddress listen;
    private InetSocketAddress upstream;
    private String publicHost;
    private Set<Carrier> carriers = EnumSet.allOf(Carrier.class);
    private InetSocketAddress obfs4Listen;
    private String obfs4proxy = "obfs4proxy";
    private int maxPollSessions = 10_000;
    private InetSocketAddress fallback;
    private Clock clock = Clock.systemUTC();
    private PrometheusRegistry registry;

    private Builder() {}

    /** Where its keys and bridge lines live. Required. */
    public Builder dataDirectory(Path dir) {
      this.dataDirectory = Objects.requireNonNull(dir, "dir");
      return this;
    }

    /** The web port (HTTPS, or plain HTTP behind a TLS-terminating proxy). Required. */
    public Builder listen(InetSocketAddress address) {
      this.listen = Objects.requireNonNull(address, "address");
      return this;
    }

    /** The server to forward to: its gRPC host and port. Required. */
    public Builder upstream(InetSocketAddress address) {
      this.upstream = Objects.requireNonNull(address, "address");
      return this;
    }

    /** The host clients dial, written into bridge lines; default: the listen host. */
    public Builder publicHost(String host) {
      this.publicHost = Objects.requireNonNull(host, "host");
      return this;
    }

    /** Which carriers to accept; default all three. */
    public Builder carriers(Set<Carrier> carriers) {
      if (carriers.isEmpty()) {
        throw new IllegalArgumentException("at least one carrier is needed");
      }
      this.carriers = EnumSet.copyOf(carriers);
      return this;
    }

    /** Where obfs4proxy listens; default: the listen host, the web port + 1 (or any port, for 0). */
    public Builder obfs4Listen(InetSocketAddress address) {
      this.obfs4Listen = Objects.requireNonNull(address, "address");
      return this;
    }

    /** The obfs4proxy executable; default {@code obfs4proxy} on the PATH. */
    public Builder obfs4proxy(String executable) {
      this.obfs4proxy = Objects.requireNonNull(executable, "executable");
      return this;
    }

    /** Most polling sessions at once; default 10,000. */
    public Builder maxPollSessions(int max) {
      if (max < 1) {
        throw new IllegalArgumentException("maxPollSessions must be positive: " + max);
      }
      this.maxPollSessions = max;
      return this;
    }

    /**
     * A real web server (an nginx on loopback, say) to which the web port splices, unchanged but
     * for the secret path, which is hidden, every connection that does not open with a complete,
     * well-formed carrier request: other paths, malformed requests, non-HTTP bytes, heads not
     * complete within 8 KiB or 5 seconds. Plain HTTP, after the web port's own TLS if the client
     * used TLS. Default: none, and a built-in imitation of a fresh nginx answers them, which a
     * careful prober can tell from the real thing.
     */
    public Builder fallback(InetSocketAddress webServer) {
      checkFallbackAddress(webServer);
      this.fallback = Objects.requireNonNull(webServer, "webServer");
      return this;
    }

    public Builder clock(Clock clock) {
      this.clock = Objects.requireNonNull(clock, "clock");
      return this;
    }

    /**
     * Counts carrier sessions and their bytes, by carrier, in {@code registry} (see
     * {@link CarrierMetrics} for the names). Default: counted where nobody reads them.
     */
    public Builder metrics(PrometheusRegistry registry) {
      this.registry = Objects.requireNonNull(registry, "registry");
      return this;
    }

    /**
     * Takes the data directory's lock (see {@link DataDirectoryLock}), loads or makes the keys,
     * starts listening and, for obfs4, starts obfs4proxy; writes DIR/bridges. The lock is held
     * until {@link Relay#close}.
     *
     * @throws org.ferry.datadir.DataDirectoryInUseException if another process has the directory
     */
    public Relay start() throws IOException {
      if (dataDirectory == null || listen == null || upstream == null) {
        throw new IllegalStateException("dataDirectory, listen and upstream are required");
      }
      if (fallback != null) {
        checkFallback(fallback, listen, carriers);
      }
      SecureRandom random = new SecureRandom();
      DataDirectoryLock lock = DataDirectoryLock.acquire(dataDirectory);
      try {
        return start(lock, random);
      } catch (IOException | RuntimeException e) {
        lock.close();
        throw e;
      }
    }

    private Relay start(DataDirectoryLock lock, SecureRandom random) throws IOException {
      List<String> kinds = new ArrayList<>();
      carriers.forEach(c -> kinds.add(c.name().toLowerCase(java.util.Locale.ROOT)));
      if (fallback != null) {
        kinds.add("fallback");
      }
      CarrierMetrics metrics = registry != null ? CarrierMetrics.register(registry, kinds) : CarrierMetrics.unread();
      // A bland name: whoever completes TLS with the web port must learn nothing of Ferry.
      TlsIdentity identity =
          TlsIdentity.loadOrCreate(dataDirectory.resolve("identity"), "relay", "localhost", random);
      String secret = loadOrCreateSecret(dataDirectory.resolve("bridge-secret"), random);
      SslContext tls = SslContextBuilder.forServer(identity.privateKey(), identity.certificate())
          .sslProvider(SslProvider.JDK)
          .applicationProtocolConfig(new ApplicationProtocolConfig(
              ApplicationProtocolConfig.Protocol.ALPN,
              ApplicationProtocolConfig.SelectorFailureBehavior.NO_ADVERTISE,
              ApplicationProtocolConfig.SelectedListenerFailureBehavior.ACCEPT,
              ApplicationProtocolNames.HTTP_1_1))
          .build();
      Upstream up = new Upstream(upstream, metrics);
      Decoy decoy = new Decoy(clock);
      PollSessions poll = carriers.contains(Carrier.POLL) ? new PollSessions(up, decoy, maxPollSessions) : null;
      RelayHttpHandler.Routes routes = new RelayHttpHandler.Routes(
          ("/" + secret).getBytes(StandardCharsets.UTF_8), carriers.contains(Carrier.WS), poll, up, decoy);

      EventLoopGroup boss = new MultiThreadIoEventLoopGroup(1, NioIoHandler.newFactory());
      EventLoopGroup workers = new MultiThreadIoEventLoopGroup(NioIoHandler.newFactory());
      List<Channel> listeners = new ArrayList<>();
      Obfs4ServerTransport obfs4 = null;
      try {
        Channel web = new ServerBootstrap()
            .group(boss, workers)
            .channel(NioServerSocketChannel.class)
            .childOption(ChannelOption.TCP_NODELAY, true)
            .childHandler(RelayHttpHandler.webPort(tls, routes, Optional.ofNullable(fallback).map(a -> new Fallback(a, metrics))))
            .bind(listen).syncUninterruptibly().channel();
        listeners.add(web);
        InetSocketAddress webAt = (InetSocketAddress) web.localAddress();
        String host = publicHost != null ? publicHost : webAt.getHostString();
        byte[] pin = ServerAddress.fingerprintOf(identity.certificate().getPublicKey());
        String pinText = Base64.getUrlEncoder().withoutPadding().encodeToString(pin);
        String hostPort = HostPort.format(host, webAt.getPort());
        List<BridgeLine> lines = new ArrayList<>();
        if (carriers.contains(Carrier.WS)) {
          lines.add(BridgeLine.parse("ws wss://" + hostPort + "/" + secret + " pin=" + pinText));
        }
        if (carriers.contains(Carrier.POLL)) {
          lines.add(BridgeLine.parse("poll https://" + hostPort + "/" + secret + " pin=" + pinText));
        }
        if (carriers.contains(Carrier.OBFS4)) {
          Channel orPort = new ServerBootstrap()
              .group(boss, workers)
              .channel(NioServerSocketChannel.class)
              .childOption(ChannelOption.AUTO_READ, false)
              .childOption(ChannelOption.TCP_NODELAY, true)
              .childHandler(up.forwarder("obfs4"))
              .bind(new InetSocketAddress("127.0.0.1", 0)).syncUninterruptibly().channel();
          listeners.add(orPort);
          InetSocketAddress bind = obfs4Listen != null ? obfs4Listen
              : new InetSocketAddress(webAt.getAddress(), listen.getPort() == 0 ? 0 : webAt.getPort() + 1);
          obfs4 = Obfs4ServerTransport.start(
              obfs4proxy, dataDirectory.resolve("obfs4"), bind, (InetSocketAddress) orPort.localAddress());
          lines.add(BridgeLine.parse("obfs4 " + HostPort.format(host, obfs4.address().getPort()) + " " + obfs4.arguments()));
        }
        if (poll != null) {
          workers.next().scheduleAtFixedRate(
              () -> poll.closeIdle(System.nanoTime()), 10, 10, TimeUnit.SECONDS);
        }
        writeBridges(dataDirectory.resolve("bridges"), lines);
        log.info("relay listening on {} for {}; {}", webAt.getPort(), carriers,
            fallback == null ? "other requests get the built-in decoy"
                : "other connections go to " + HostPort.format(fallback.getHostString(), fallback.getPort()));
        return new Relay(boss, workers, listeners, poll, obfs4, lines, webAt, lock);
      } catch (IOException | RuntimeException e) {
        listeners.forEach(Channel::close);
        if (obfs4 != null) {
          obfs4.close();
        }
        workers.shutdownGracefully(0, 1, TimeUnit.SECONDS);
        boss.shutdownGracefully(0, 1, TimeUnit.SECONDS);
        throw e;
      }
    }
  }

  private static String loadOrCreateSecret(Path file, SecureRandom random) throws IOException {
    if (Files.exists(file)) {
      String s = Files.readString(file, StandardCharsets.US_ASCII).strip();
      if (s.length() < 16 || !s.matches("[A-Za-z0-9_-]+")) {
        throw new IOException(file + " is damaged; delete it to make a new secret (old bridge lines stop working)");
      }
      return s;
    }
    byte[] b = new byte[16];
    random.nextBytes(b);
    String s = Base64.getUrlEncoder().withoutPadding().encodeToString(b);
    PrivateFiles.createNew(file, s + "\n");
    return s;
  }

  private static void writeBridges(Path file, List<BridgeLine> lines) throws IOException {
    StringBuilder b = new StringBuilder();
    lines.forEach(l -> b.append(l).append('\n'));
    PrivateFiles.write(file, b.toString());
  }
}
