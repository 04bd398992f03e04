package org.ferry.sdk.internal.carrier;

import io.netty.bootstrap.Bootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.ChannelPipeline;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.nio.NioIoHandler;
import io.netty.channel.socket.nio.NioSocketChannel;
import io.netty.handler.codec.http.DefaultHttpHeaders;
import io.netty.handler.codec.http.HttpClientCodec;
import io.netty.handler.codec.http.HttpObjectAggregator;
import io.netty.handler.codec.http.websocketx.WebSocketClientHandshakerFactory;
import io.netty.handler.codec.http.websocketx.WebSocketClientProtocolHandler;
import io.netty.handler.codec.http.websocketx.WebSocketVersion;
import io.netty.handler.proxy.HttpProxyHandler;
import io.netty.handler.proxy.ProxyHandler;
import io.netty.handler.proxy.Socks5ProxyHandler;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslContextBuilder;
import io.netty.handler.ssl.SslProvider;
import io.netty.resolver.NoopAddressResolverGroup;
import io.netty.util.concurrent.DefaultThreadFactory;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.URI;
import java.nio.file.Path;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.SSLException;
import org.ferry.proto.BridgeLine;
import org.ferry.proto.HostPort;
import org.ferry.proto.ManagedTransport;
import org.ferry.proto.ServerAddress;
import org.ferry.sdk.internal.net.PinnedTrustManager;

/**
 * Opens carriers named by bridge lines, each through the client's proxy if it has one. One
 * event loop group and at most one obfs4proxy process serve every carrier of a client.
 */
public final class CarrierConnector implements AutoCloseable {
  private final EventLoopGroup group =
      new MultiThreadIoEventLoopGroup(2, new DefaultThreadFactory("ferry-carrier", true), NioIoHandler.newFactory());
  private final Optional<ProxySettings> proxy;
  private final String obfs4proxy;
  private final Path obfs4State;
  private final Duration connectTimeout;
  private final Optional<InetAddress> localAddress;
  private final ConcurrentHashMap<String, SslContext> tlsContexts = new ConcurrentHashMap<>();
  private Obfs4ClientTransport obfs4;
  private boolean closed;

  /**
   * @param obfs4proxy the executable for obfs4 bridges
   * @param obfs4State obfs4proxy's state directory
   */
  public CarrierConnector(Optional<ProxySettings> proxy, String obfs4proxy, Path obfs4State, Duration connectTimeout) {
    this(proxy, obfs4proxy, obfs4State, connectTimeout, Optional.empty());
  }

  /**
   * @param localAddress the local address every TCP connection of every carrier leaves from
   *     (any port); empty for the system's choice
   */
  public CarrierConnector(Optional<ProxySettings> proxy, String obfs4proxy, Path obfs4State, Duration connectTimeout,
      Optional<InetAddress> localAddress) {
    this.proxy = proxy;
    this.obfs4proxy = obfs4proxy;
    this.obfs4State = obfs4State;
    this.connectTimeout = connectTimeout;
    this.localAddress = localAddress;
  }

  public EventLoopGroup group() {
    return group;
  }

  /** Opens the carrier {@code line} names; the future fails if it cannot be opened. */
  public CompletableFuture<Pipe> open(BridgeLine line, Pipe.Listener listener) {
    try {
      return switch (line.kind()) {
        case DIRECT -> stream(line, listener, false, proxy, null);
        case WS -> stream(line, listener, true, proxy, null);
        case POLL -> PollPipe.open(this, line, listener);
        // Starting obfs4proxy blocks (up to 20 s the first time): not on an event loop.
        case OBFS4 -> {
          checkObfs4CanKeepNamesFromDns(line);
          yield CompletableFuture.supplyAsync(this::obfs4)
              .thenCompose(socks -> stream(line, listener, false, Optional.empty(), socks));
        }
      };
    } catch (RuntimeException e) {
      return CompletableFuture.failedFuture(e);
    }
  }

  /**
   * obfs4proxy looks a host name up with the system's resolver before it dials an HTTP proxy
   * (TOR_PT_PROXY=http://..., obfs4proxy 0.0.14), which would leak the name; it hands names to
   * a SOCKS5 proxy unresolved. So an obfs4 line that names a host cannot go through an HTTP proxy.
   */
  private void checkObfs4CanKeepNamesFromDns(BridgeLine line) {
    if (proxy.isPresent() && proxy.get().type() == ProxySettings.Type.HTTP && !HostPort.isIpLiteral(line.host())) {
      throw new IllegalArgumentException("obfs4 line " + line.shortForm() + " names a host, and obfs4proxy would look it"
          + " up outside the HTTP proxy; use a SOCKS5 proxy, or an obfs4 line with an IP address");
    }
  }

  private synchronized InetSocketAddress obfs4() {
    if (closed) {
      throw new IllegalStateException("closed");
    }
    if (obfs4 == null || !obfs4.isAlive()) {
      try {
        obfs4 = Obfs4ClientTransport.start(obfs4proxy, obfs4State, proxy);
      } catch (IOException e) {
        throw new java.io.UncheckedIOException(e);
      }
    }
    return obfs4.socksAddress();
  }

  /** A TCP stream carrier: direct, WebSocket, or obfs4 via obfs4proxy's SOCKS5 port. */
  private CompletableFuture<Pipe> stream(BridgeLine line, Pipe.Listener listener, boolean webSocket,
      Optional<ProxySettings> via, InetSocketAddress obfs4Socks) {
    boolean proxied = via.isPresent();
    PipeHandler end = new PipeHandler(listener, webSocket,
        obfs4Socks != null ? CarrierFailure::ofObfs4 : t -> CarrierFailure.of(t, proxied));
    SslContext tls = webSocket && line.tls() ? tls(line) : null;
    Bootstrap b = bootstrap(via.isPresent() || obfs4Socks != null, group).handler(new ChannelInitializer<Channel>() {
      @Override
      protected void initChannel(Channel ch) {
        ChannelPipeline p = ch.pipeline();
        ProxyHandler proxyHandler = null;
        if (obfs4Socks != null) {
          List<String> auth = ManagedTransport.socksArguments(obfs4Arguments(line));
          proxyHandler = new Socks5ProxyHandler(obfs4Socks, auth.get(0), auth.get(1));
        } else if (via.isPresent()) {
          proxyHandler = proxyHandler(via.get());
        }
        if (proxyHandler != null) {
          proxyHandler.setConnectTimeoutMillis(connectTimeout.toMillis());
          p.addLast(proxyHandler);
        }
        if (tls != null) {
          p.addLast(tls.newHandler(ch.alloc(), line.host(), line.port()));
        }
        if (webSocket) {
          URI uri = URI.create((line.tls() ? "wss://" : "ws://") + line.hostPort() + line.path());
          p.addLast(new HttpClientCodec(), new HttpObjectAggregator(8192),
              new WebSocketClientProtocolHandler(WebSocketClientHandshakerFactory.newHandshaker(
                  uri, WebSocketVersion.V13, null, false, browserHeaders(), PipeHandler.MAX_FRAME),
                  true));
          p.addLast(new ChannelInboundHandlerAdapter() {
            @Override
            public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
              if (evt == WebSocketClientProtocolHandler.ClientHandshakeStateEvent.HANDSHAKE_COMPLETE) {
                ctx.pipeline().remove(this);
                end.ready(ctx.channel());
              } else if (evt == WebSocketClientProtocolHandler.ClientHandshakeStateEvent.HANDSHAKE_TIMEOUT) {
                end.fail(new CarrierFailure(CarrierFailure.Kind.LINE, "no answer to the WebSocket upgrade in time"),
                    ctx.channel());
              } else {
                ctx.fireUserEventTriggered(evt);
              }
            }
          });
        }
        p.addLast(end);
        ProxyHandler ph = proxyHandler;
        if (!webSocket) {
          ch.pipeline().addFirst(new ChannelInboundHandlerAdapter() {
            @Override
            public void channelActive(ChannelHandlerContext ctx) {
              ctx.pipeline().remove(this);
              ctx.fireChannelActive();
              if (ph == null) {
                end.ready(ctx.channel());
              } else {
                ph.connectFuture().addListener(f -> {
                  if (f.isSuccess()) {
                    end.ready(ctx.channel());
                  } else {
                    end.fail(f.cause(), ctx.channel());
                  }
                });
              }
            }
          });
        }
      }
    });
    b.connect(target(line, via.isPresent() || obfs4Socks != null)).addListener((ChannelFutureListener) f -> {
      if (!f.isSuccess()) {
        end.fail(f.cause(), f.channel());
      }
    });
    return end.opened;
  }

  Bootstrap bootstrap(boolean proxied, EventLoopGroup on) {
    Bootstrap b = new Bootstrap()
        .group(on)
        .channel(NioSocketChannel.class)
        .option(ChannelOption.TCP_NODELAY, true)
        .option(ChannelOption.CONNECT_TIMEOUT_MILLIS, (int) connectTimeout.toMillis());
    // Every carrier's TCP connections are made here (direct, WebSocket, polling, to a proxy or
    // to obfs4proxy's SOCKS port): all of them leave from the chosen address.
    localAddress.ifPresent(a -> b.localAddress(new InetSocketAddress(a, 0)));
    if (proxied) {
      // The proxy resolves names: a Tor user's DNS must not leak.
      b.resolver(NoopAddressResolverGroup.INSTANCE);
    }
    return b;
  }

  /**
   * Where to connect for {@code line}. Through a proxy (or obfs4proxy's SOCKS port) nothing is
   * looked up here: an IP literal goes as an address (SOCKS5 ATYP 1 or 4, CONNECT [v6]:port) and
   * a name unresolved, for the proxy to resolve.
   */
  static InetSocketAddress target(BridgeLine line, boolean proxied) {
    HostPort hp = new HostPort(line.host(), line.port());
    return proxied ? hp.withoutLookup() : hp.toSocketAddress();
  }

  Optional<ProxySettings> proxy() {
    return proxy;
  }

  Duration connectTimeout() {
    return connectTimeout;
  }

  static ProxyHandler proxyHandler(ProxySettings p) {
    return switch (p.type()) {
      case SOCKS5 -> p.user().isPresent()
          ? new Socks5ProxyHandler(p.address(), p.user().get(), p.password().orElse(""))
          : new Socks5ProxyHandler(p.address());
      case HTTP -> p.user().isPresent()
          ? new HttpProxyHandler(p.address(), p.user().get(), p.password().orElse(""))
          : new HttpProxyHandler(p.address());
    };
  }

  /** A line's arguments for obfs4proxy, in a fixed order; escaped by {@link ManagedTransport#socksArguments}. */
  static Map<String, String> obfs4Arguments(BridgeLine line) {
    Map<String, String> args = new LinkedHashMap<>();
    args.put("cert", line.params().get("cert"));
    args.put("iat-mode", line.params().get("iat-mode"));
    return args;
  }

  /** TLS for an HTTPS carrier: pinned to the line's key if it has a pin, else the system's CAs. */
  SslContext tls(BridgeLine line) {
    String key = line.pin().map(p -> java.util.HexFormat.of().formatHex(p)).orElse("ca");
    return tlsContexts.computeIfAbsent(key, k -> {
      try {
        SslContextBuilder b = SslContextBuilder.forClient().sslProvider(SslProvider.JDK);
        if (line.pin().isPresent()) {
          b.trustManager(new PinnedTrustManager(new ServerAddress(line.host(), line.port(), line.pin().get())))
              .endpointIdentificationAlgorithm(null);
        } else {
          b.endpointIdentificationAlgorithm("HTTPS");
        }
        return b.build();
      } catch (SSLException e) {
        throw new IllegalStateException("TLS is unavailable in this JVM", e);
      }
    });
  }

  /** Headers a browser would send with a WebSocket upgrade. */
  static DefaultHttpHeaders browserHeaders() {
    DefaultHttpHeaders h = new DefaultHttpHeaders();
    h.set("User-Agent", PollPipe.USER_AGENT);
    h.set("Cache-Control", "no-cache");
    return h;
  }

  @Override
  public void close() {
    synchronized (this) {
      closed = true;
      if (obfs4 != null) {
        obfs4.close();
      }
    }
    group.shutdownGracefully(0, 1, TimeUnit.SECONDS).syncUninterruptibly();
  }
}
