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
public record Upstream(InetSocketAddress address) {
  private static final int CONNECT_TIMEOUT_MILLIS = 10_000;

  /** For a listener whose every connection is spliced, byte for byte, to the server (the obfs4 "ORPort"). */
  public ChannelInitializer<SocketChannel> forwarder() {
    return new ChannelInitializer<>() {
      @Override
      protected void initChannel(SocketChannel ch) {
        connect(ch.eventLoop()).addListener((ChannelFutureListener) f -> {
          if (f.isSuccess()) {
            Splice.bothWays(ch, f.channel());
          } else {
            ch.close();
          }
        });
      }
    };
  }

  /** Connects; the channel comes back with auto-read off and an empty pipeline. */
  public ChannelFuture connect(EventLoop loop) {
    return new Bootstrap()
        .group(loop)
        .channel(NioSocketChannel.class)
        .option(ChannelOption.AUTO_READ, false)
        .option(ChannelOption.TCP_NODELAY, true)
        .option(ChannelOption.CONNECT_TIMEOUT_MILLIS, CONNECT_TIMEOUT_MILLIS)
        .handler(new ChannelInitializer<Channel>() {
          @Override
          protected void initChannel(Channel ch) {
            // Handlers are added by the caller once both ends exist.
          }
        })
        .connect(address);
  }
}
