package org.ferry.relay.internal.http;

import io.netty.buffer.ByteBuf;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelOption;
import io.netty.channel.ChannelPipeline;
import io.netty.channel.EventLoop;
import io.netty.channel.socket.ChannelInputShutdownEvent;
import io.netty.handler.ssl.SslCloseCompletionEvent;
import io.netty.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;
import org.ferry.relay.internal.pipe.Splice;

/**
 * The first handler after TLS (if any) on a web port that has a fallback web server. It holds
 * the bytes a connection opens with until {@link CarrierHead} can judge them. A carrier's request
 * goes on to the HTTP handlers behind the gate. Anything else goes, with every byte that follows,
 * to the fallback, and the two are spliced both ways: other paths, malformed requests, other
 * protocols, a head that is not complete within {@link CarrierHead#MAX_HEAD} bytes or
 * {@code sniffMillis} of the connection's start, a client that ends its output first. The
 * fallback gets the bytes as they came, but for the secret, which is hidden
 * ({@link CarrierHead#hide}): always in the opening bytes, which are held whole; in later reads
 * unless a secret is split between two of them (only a client that knows the secret and sends it
 * oddly can make that happen).
 *
 * <p>A connection whose first request is another path stays with the fallback for good, even if
 * a carrier's request follows on it: the gate judges only the opening head.
 *
 * <p>Connections with the gate allow half-closure until they turn out to be a carrier's, so that
 * a client's early FIN reaches the fallback as a FIN.
 */
public final class FallbackGate extends ChannelInboundHandlerAdapter {
  /** Time from accepting a connection to having a whole carrier request head: 5 seconds. */
  public static final long SNIFF_MILLIS = 5_000;

  private final CarrierHead carrier;
  private final Function<EventLoop, ChannelFuture> fallback;
  private final long sniffMillis;
  private ByteBuf held;
  private ScheduledFuture<?> timer;
  private boolean diverting;
  private boolean inputClosed;

  /**
   * @param fallback connects to the fallback web server (on the loop given), returning a channel
   *     with auto-read off and an empty pipeline
   * @param sniffMillis how long a connection may take, from its start, to send a whole carrier
   *     request head before it goes to the fallback with what it sent
   */
  public FallbackGate(CarrierHead carrier, Function<EventLoop, ChannelFuture> fallback, long sniffMillis) {
    this.carrier = carrier;
    this.fallback = fallback;
    this.sniffMillis = sniffMillis;
  }

  @Override
  public void handlerAdded(ChannelHandlerContext ctx) {
    held = ctx.alloc().buffer();
    if (ctx.channel().isActive()) {
      startTimer(ctx);
    }
  }

  @Override
  public void channelActive(ChannelHandlerContext ctx) {
    startTimer(ctx);
    ctx.fireChannelActive();
  }

  private void startTimer(ChannelHandlerContext ctx) {
    if (timer == null) {
      timer = ctx.executor().schedule(() -> {
        if (!diverting && held != null) {
          divert(ctx);
        }
      }, sniffMillis, TimeUnit.MILLISECONDS);
    }
  }

  @Override
  public void channelRead(ChannelHandlerContext ctx, Object msg) {
    if (!(msg instanceof ByteBuf buf)) {
      ctx.fireChannelRead(msg);
      return;
    }
    if (held == null) {
      buf.release();
      return;
    }
    held.writeBytes(buf);
    buf.release();
    if (!diverting) {
      switch (carrier.judge(held)) {
        case CARRIER -> pass(ctx);
        case FALLBACK -> divert(ctx);
        case MORE -> { }
      }
    }
  }

  @Override
  public void channelReadComplete(ChannelHandlerContext ctx) {
    // Nothing has gone past the gate yet.
  }

  @Override
  public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
    if (evt instanceof ChannelInputShutdownEvent || evt instanceof SslCloseCompletionEvent) {
      inputClosed = true;
      if (!diverting && held != null) {
        // A head cut short is not a carrier's; the fallback answers it as it would anyone.
        divert(ctx);
      }
      return;
    }
    ctx.fireUserEventTriggered(evt);
  }

  /** A carrier's request: the HTTP handlers behind the gate take the connection from here. */
  private void pass(ChannelHandlerContext ctx) {
    cancelTimer();
    ctx.channel().config().setOption(ChannelOption.ALLOW_HALF_CLOSURE, false);
    ByteBuf head = held;
    held = null;
    ctx.pipeline().remove(this);
    ctx.fireChannelRead(head);
  }

  /** Not a carrier's: to the fallback, with what came so far and all that follows. */
  private void divert(ChannelHandlerContext ctx) {
    diverting = true;
    cancelTimer();
    Channel client = ctx.channel();
    client.config().setAutoRead(false);
    // Everything behind the gate serves carriers; a diverted connection needs none of it.
    ChannelPipeline p = ctx.pipeline();
    while (p.last() != this) {
      p.removeLast();
    }
    fallback.apply(client.eventLoop()).addListener((ChannelFutureListener) f -> spliced(ctx, f));
  }

  private void spliced(ChannelHandlerContext ctx, ChannelFuture connected) {
    Channel client = ctx.channel();
    if (!connected.isSuccess() || held == null || !client.isActive()) {
      if (connected.isSuccess()) {
        connected.channel().close();
      }
      release();
      client.close();
      return;
    }
    Channel web = connected.channel();
    web.config().setOption(ChannelOption.ALLOW_HALF_CLOSURE, true);
    ByteBuf first = held;
    held = null;
    web.pipeline().addLast(new Splice(client, buf -> buf));
    ctx.pipeline().replace(this, null, new Splice(web, carrier::hide));
    if (first.isReadable()) {
      Splice.forward(client, web, carrier.hide(first));
    } else {
      first.release();
    }
    web.flush();
    if (inputClosed) {
      Splice.endOutput(web);
    }
    client.config().setAutoRead(web.isWritable());
    web.config().setAutoRead(true);
  }

  @Override
  public void channelInactive(ChannelHandlerContext ctx) {
    cancelTimer();
    release();
    ctx.fireChannelInactive();
  }

  @Override
  public void handlerRemoved(ChannelHandlerContext ctx) {
    cancelTimer();
    release();
  }

  @Override
  public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
    // Broken TLS from a prober, or a reset: close quietly, log nothing about who it was.
    ctx.close();
  }

  private void cancelTimer() {
    if (timer != null) {
      timer.cancel(false);
    }
  }

  private void release() {
    if (held != null) {
      held.release();
      held = null;
    }
  }
}
