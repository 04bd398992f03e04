package org.ferry.relay.internal.pipe;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.socket.ChannelInputShutdownEvent;
import io.netty.channel.socket.DuplexChannel;
import io.netty.handler.ssl.SslCloseCompletionEvent;
import io.netty.handler.ssl.SslHandler;
import java.util.function.Function;

/**
 * Forwards what its channel reads to a peer channel: writes as reads come, one flush per read
 * loop, and stops reading while the peer cannot take more (its write buffer is above the high
 * water mark) until the peer has drained. So a slow side slows the other down instead of filling
 * memory. Closing either closes both.
 *
 * <p>On channels that allow half-closure ({@code ChannelOption.ALLOW_HALF_CLOSURE}), the end of
 * one side's input ends the peer's output after what was written has gone out, while the other
 * way stays open for the answer: a client that sends a request and shuts its output still gets
 * the response, and a web server that answers and shuts its output still reads what follows, as
 * on a direct connection. A channel whose two ways have both ended is closed.
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
    a.config().setAutoRead(true);
    b.config().setAutoRead(true);
  }

  @Override
  public void channelRead(ChannelHandlerContext ctx, Object msg) {
    if (!(msg instanceof ByteBuf buf)) {
      ctx.fireChannelRead(msg);
      return;
    }
    forward(ctx.channel(), peer, wrap.apply(buf));
  }

  @Override
  public void channelReadComplete(ChannelHandlerContext ctx) {
    peer.flush();
  }

  @Override
  public void channelWritabilityChanged(ChannelHandlerContext ctx) {
    // This channel has drained below its low water mark: the side that feeds it may read again.
    if (ctx.channel().isWritable()) {
      peer.config().setAutoRead(true);
    }
    ctx.fireChannelWritabilityChanged();
  }

  /** Writes {@code msg} to {@code to} (flushed at the end of the read loop); pauses {@code from} while {@code to} is full. */
  public static void forward(Channel from, Channel to, Object msg) {
    to.write(msg).addListener((ChannelFutureListener) f -> {
      if (!f.isSuccess()) {
        from.close();
        to.close();
      }
    });
    if (!to.isWritable()) {
      from.config().setAutoRead(false);
    }
  }

  @Override
  public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
    if (evt instanceof ChannelInputShutdownEvent || evt instanceof SslCloseCompletionEvent) {
      endOutput(peer);
      if (ctx.channel() instanceof DuplexChannel d && d.isOutputShutdown()) {
        ctx.close();
      }
    }
    ctx.fireUserEventTriggered(evt);
  }

  @Override
  public void channelInactive(ChannelHandlerContext ctx) {
    closeAfterFlush(peer);
  }

  /**
   * Ends what is sent on {@code ch} once what was written to it has gone out: a TCP FIN, the way
   * back staying open; for a channel with TLS, which cannot half-close in TLS 1.2, a close
   * (close_notify, then FIN).
   */
  public static void endOutput(Channel ch) {
    if (!ch.isActive()) {
      return;
    }
    if (ch instanceof DuplexChannel d && ch.pipeline().get(SslHandler.class) == null) {
      ch.writeAndFlush(Unpooled.EMPTY_BUFFER).addListener((ChannelFutureListener) f -> {
        if (d.isInputShutdown()) {
          d.close();
        } else {
          d.shutdownOutput();
        }
      });
    } else {
      closeAfterFlush(ch);
    }
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
