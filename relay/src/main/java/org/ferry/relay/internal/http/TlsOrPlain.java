package org.ferry.relay.internal.http;

import io.netty.buffer.ByteBuf;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.handler.ssl.SslContext;

/**
 * Puts TLS in front of a connection whose first byte opens a TLS handshake record (0x16), and
 * steps aside for anything else, which is plain. Unlike Netty's {@code OptionalSslHandler} it
 * decides on one byte: a connection that sends fewer than a TLS record header's five bytes and
 * stops must still reach the fallback web server, as it would reach a real one.
 */
final class TlsOrPlain extends ChannelInboundHandlerAdapter {
  private static final int TLS_HANDSHAKE = 0x16;

  private final SslContext tls;

  TlsOrPlain(SslContext tls) {
    this.tls = tls;
  }

  @Override
  public void channelRead(ChannelHandlerContext ctx, Object msg) {
    if (msg instanceof ByteBuf buf && buf.isReadable()) {
      if (buf.getUnsignedByte(buf.readerIndex()) == TLS_HANDSHAKE) {
        ctx.pipeline().replace(this, null, tls.newHandler(ctx.alloc()));
      } else {
        ctx.pipeline().remove(this);
      }
    }
    // Once replaced or removed, this context still forwards to what now follows it.
    ctx.fireChannelRead(msg);
  }
}
