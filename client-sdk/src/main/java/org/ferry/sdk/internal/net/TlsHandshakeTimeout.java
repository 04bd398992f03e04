package org.ferry.sdk.internal.net;

import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelOutboundHandlerAdapter;
import io.netty.channel.ChannelPromise;
import io.netty.handler.ssl.SslHandler;
import java.time.Duration;

/**
 * Gives gRPC's TLS handshake with the server as long as a call may take, instead of Netty's fixed
 * 10 s. Over a carrier, that handshake's clock starts before the carrier is open: it includes
 * opening the carrier (the obfs4 handshake, a proxy, a WebSocket upgrade), which on a slow link
 * (8 kbit/s) alone takes longer than 10 s. gRPC makes its {@link SslHandler} itself and offers no
 * setting; this handler, first in the channel, sets the timeout when the handler writes its
 * ClientHello, which Netty does before it arms the timer.
 */
public final class TlsHandshakeTimeout extends ChannelOutboundHandlerAdapter {
  private final Duration timeout;

  private TlsHandshakeTimeout(Duration timeout) {
    this.timeout = timeout;
  }

  /** Lets the TLS handshake of a new gRPC channel {@code ch}, not yet registered, take {@code timeout}. */
  public static void addTo(Channel ch, Duration timeout) {
    ch.pipeline().addFirst(new TlsHandshakeTimeout(timeout));
  }

  @Override
  public void write(ChannelHandlerContext ctx, Object msg, ChannelPromise promise) throws Exception {
    SslHandler tls = ctx.pipeline().get(SslHandler.class);
    if (tls != null) {
      tls.setHandshakeTimeoutMillis(timeout.toMillis());
      ctx.pipeline().remove(this);
    }
    ctx.write(msg, promise);
  }
}
