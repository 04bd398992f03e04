package org.ferry.server.internal.federation;

import io.grpc.Attributes;
import io.grpc.ManagedChannel;
import io.grpc.netty.GrpcSslContexts;
import io.grpc.netty.NettyChannelBuilder;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.nio.NioIoHandler;
import io.netty.channel.socket.nio.NioSocketChannel;
import io.netty.handler.proxy.Socks5ProxyHandler;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslContextBuilder;
import io.netty.handler.ssl.SslProvider;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.SSLException;
import org.ferry.proto.ServerAddress;
import org.ferry.relay.internal.tls.TlsIdentity;

/**
 * One gRPC channel per peer server, over mutual TLS: this server's own key as the client
 * certificate, the peer's key pinned by the fingerprint in its address. Connects within
 * {@link #CONNECT_TIMEOUT_MILLIS}, keeps idle connections alive with pings, binds outgoing
 * connections to the configured source address, and goes through the SOCKS5 proxy if one is
 * configured. Each peer's channel is its own, so a dead or
 * blackholed peer holds up no other.
 */
final class PeerChannels implements AutoCloseable {
  static final int CONNECT_TIMEOUT_MILLIS = 10_000;
  /** gRPC message limit for answers from peers. */
  private static final int MAX_MESSAGE = 4 << 20;

  private final TlsIdentity identity;
  private final FederationOptions options;
  private final Map<ServerAddress, ManagedChannel> channels = new ConcurrentHashMap<>();
  private volatile boolean closed;
  /** Event loops of proxied channels (gRPC needs its own group with a channel factory). */
  private final EventLoopGroup proxyGroup;

  PeerChannels(TlsIdentity identity, FederationOptions options) {
    this.identity = identity;
    this.options = options;
    this.proxyGroup = options.proxy().isPresent()
        ? new MultiThreadIoEventLoopGroup(1, NioIoHandler.newFactory()) : null;
  }

  /** The channel to {@code peer} (made on first use). */
  ManagedChannel channel(ServerAddress peer) {
    if (closed) {
      throw new IllegalStateException("federation is stopped");
    }
    return channels.computeIfAbsent(peer, this::open);
  }

  private ManagedChannel open(ServerAddress peer) {
    SslContext ssl;
    try {
      ssl = GrpcSslContexts.configure(SslContextBuilder.forClient(), SslProvider.JDK)
          .protocols("TLSv1.3")
          .keyManager(identity.privateKey(), identity.certificate())
          .trustManager(PeerTrust.pinning(peer))
          .build();
    } catch (SSLException e) {
      throw new IllegalStateException("cannot set up TLS for federation", e);
    }
    NettyChannelBuilder builder = NettyChannelBuilder.forAddress(peer.host(), peer.port())
        .sslContext(ssl)
        .withOption(ChannelOption.CONNECT_TIMEOUT_MILLIS, CONNECT_TIMEOUT_MILLIS)
        .keepAliveTime(60, TimeUnit.SECONDS)
        .keepAliveTimeout(20, TimeUnit.SECONDS)
        .maxInboundMessageSize(MAX_MESSAGE)
        // The lanes retry by themselves, with their own backoff.
        .disableRetry();
    options.bind().ifPresent(source -> builder.localSocketPicker(new NettyChannelBuilder.LocalSocketPicker() {
      @Override
      public SocketAddress createSocketAddress(SocketAddress remoteAddress, Attributes attrs) {
        return new InetSocketAddress(source, 0);
      }
    }));
    options.proxy().ifPresent(proxy -> builder.eventLoopGroup(proxyGroup).channelFactory(() -> {
      // SOCKS5 (RFC 1928) first in the pipeline: it turns gRPC's connect into one to the proxy,
      // asks it for the peer, and holds the TLS handshake back until the proxy has connected.
      NioSocketChannel channel = new NioSocketChannel();
      Socks5ProxyHandler socks = new Socks5ProxyHandler(proxy);
      socks.setConnectTimeoutMillis(CONNECT_TIMEOUT_MILLIS);
      channel.pipeline().addFirst(socks);
      return channel;
    }));
    return builder.build();
  }

  @Override
  public void close() {
    closed = true;
    channels.values().forEach(ManagedChannel::shutdownNow);
    for (ManagedChannel c : channels.values()) {
      try {
        c.awaitTermination(5, TimeUnit.SECONDS);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        break;
      }
    }
    if (proxyGroup != null) {
      proxyGroup.shutdownGracefully(0, 5, TimeUnit.SECONDS);
    }
  }
}
