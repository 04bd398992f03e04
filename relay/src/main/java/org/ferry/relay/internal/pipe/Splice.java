package org.ferry.relay.internal.pipe;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import java.util.function.Function;

/**
 * Forwards what its channel reads to a peer channel, one read at a time: the next read is asked
 * for only once the peer has taken the last write, so a slow side slows the other down instead
 * of filling memory. Both channels run with auto-read off. Closing either closes both.
 */
public final class Splice extends ChannelInboundHandlerAdapter {
  private final Channel peer;
  private final Function<ByteBuf, Object> wrap;

  /** {@code wrap} turns bytes read here into what the peer's pipeline writes (a frame, say). */
  public Splice(Channel peer, Function<ByteBuf, Object> wrap) {
    this.peer = peer;
    this.wrap = wrap;
  }

  /** Splices two byte channels both ways and starts reading on both. */
  public static void bothWays(Channel a, Channel b) {
    a.pipeline().addLast(new Splice(b, buf -> buf));
    b.pipeline().addLast(new Splice(a, buf -> buf));
    a.read();
    b.read();
  }

  @Override
  public void channelRead(ChannelHandlerContext ctx, Object msg) {
    if (!(msg instanceof ByteBuf buf)) {
      ctx.fireChannelRead(msg);
      return;
    }
    forward(ctx.channel(), peer, wrap.apply(buf));
  }

  /** Writes {@code msg} to {@code to}; reads from {@code from} again once it is written. */
  public static void forward(Channel from, Channel to, Object msg) {
    to.writeAndFlush(msg).addListener((ChannelFutureListener) f -> {
      if (f.isSuccess()) {
        from.read();
      } else {
        from.close();
        to.close();
      }
    });
  }

  @Override
  public void channelInactive(ChannelHandlerContext ctx) {
    closeAfterFlush(peer);
  }

  @Override
  public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
    // No logging: a reset from a client or a censor is routine, and the cause may name an address.
    ctx.close();
  }

  /** Closes {@code ch} once what was written to it has gone out. */
  public static void closeAfterFlush(Channel ch) {
    if (ch.isActive()) {
      ch.writeAndFlush(Unpooled.EMPTY_BUFFER).addListener(ChannelFutureListener.CLOSE);
    }
  }
}
