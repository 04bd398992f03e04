package org.ferry.relay.internal.pipe;

import io.netty.bootstrap.Bootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoop;
import io.netty.channel.socket.SocketChannel;
import io.netty.channel.socket.nio.NioSocketChannel;
import java.net.InetSocketAddress;

/**
 * The one server a relay forwards to. Every carrier session opens its own TCP connection to it,
 * on the session's own event loop; the server's TLS runs end to end through it.
 */
public record Upstream(InetSocketAddress address, CarrierMetrics metrics) {
  private static final int CONNECT_TIMEOUT_MILLIS = 10_000;

  /**
   * For a listener whose every connection is spliced, byte for byte, to the server (the obfs4
   * "ORPort"); sessions are counted as {@code carrier}'s.
   */
  public ChannelInitializer<SocketChannel> forwarder(String carrier) {
    return new ChannelInitializer<>() {
      @Override
      protected void initChannel(SocketChannel ch) {
        connect(ch.eventLoop(), carrier).addListener((ChannelFutureListener) f -> {
          if (f.isSuccess()) {
            Splice.bothWays(ch, f.channel());
          } else {
            ch.close();
          }
        });
      }
    };
  }

  /**
   * Connects for a session of {@code carrier} (ws, poll, obfs4, fallback: a metrics label); the
   * channel comes back with auto-read off and only the carrier's meter in its pipeline.
   */
  public ChannelFuture connect(EventLoop loop, String carrier) {
    return new Bootstrap()
        .group(loop)
        .channel(NioSocketChannel.class)
        .option(ChannelOption.AUTO_READ, false)
        .option(ChannelOption.TCP_NODELAY, true)
        .option(ChannelOption.CONNECT_TIMEOUT_MILLIS, CONNECT_TIMEOUT_MILLIS)
        .handler(new ChannelInitializer<Channel>() {
          @Override
          protected void initChannel(Channel ch) {
            // Other handlers are added by the caller once both ends exist.
            ch.pipeline().addLast(metrics.meter(carrier));
          }
        })
        .connect(address);
  }
}
