package org.ferry.sdk.internal.carrier;

import io.netty.buffer.ByteBuf;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.handler.codec.http.websocketx.BinaryWebSocketFrame;
import io.netty.handler.codec.http.websocketx.ContinuationWebSocketFrame;
import io.netty.util.ReferenceCountUtil;
import java.util.concurrent.CompletableFuture;
import java.util.function.Function;

/**
 * The end of a carrier's Netty pipeline: passes bytes (or binary WebSocket frames) to the pipe's
 * listener, and reports the close once. Until {@link #ready} the pipe is still being opened: a
 * failure then fails the open instead, with a {@link CarrierFailure} that says why in plain words.
 */
final class PipeHandler extends ChannelInboundHandlerAdapter implements Pipe {
  private final Pipe.Listener listener;
  static final int MAX_FRAME = 1 << 20;
  private final boolean webSocket;
  private final Function<Throwable, CarrierFailure> explain;
  final CompletableFuture<Pipe> opened = new CompletableFuture<>();
  private Channel channel;
  private boolean closedReported;

  /** @param explain turns what failed an open into the reason the dialer reports */
  PipeHandler(Pipe.Listener listener, boolean webSocket, Function<Throwable, CarrierFailure> explain) {
    this.listener = listener;
    this.webSocket = webSocket;
    this.explain = explain;
  }

  /** Called on the channel's loop when the carrier is usable. */
  void ready(Channel ch) {
    this.channel = ch;
    if (!opened.complete(this)) {
      ch.close();
    }
  }

  void fail(Throwable cause, Channel ch) {
    ch.close();
    opened.completeExceptionally(explain.apply(cause));
  }

  @Override
  public void channelRead(ChannelHandlerContext ctx, Object msg) {
    if (msg instanceof ByteBuf buf && !webSocket) {
      listener.onData(buf);
    } else if (msg instanceof BinaryWebSocketFrame frame) {
      listener.onData(frame.content());
    } else if (msg instanceof ContinuationWebSocketFrame frame) {
      listener.onData(frame.content());
    } else {
      ReferenceCountUtil.release(msg);
    }
  }

  @Override
  public void channelInactive(ChannelHandlerContext ctx) {
    if (!opened.isDone()) {
      opened.completeExceptionally(explain.apply(new java.nio.channels.ClosedChannelException()));
    } else if (!closedReported) {
      closedReported = true;
      listener.onClosed();
    }
  }

  @Override
  public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
    if (!opened.isDone()) {
      opened.completeExceptionally(explain.apply(cause));
    }
    ctx.close();
  }

  @Override
  public void channelReadComplete(ChannelHandlerContext ctx) {
    if (opened.isDone()) {
      listener.onDataBatchEnd();
    }
  }

  @Override
  public void write(ByteBuf data) {
    channel.write(webSocket ? new BinaryWebSocketFrame(data) : data);
  }

  @Override
  public void flush() {
    channel.flush();
  }

  @Override
  public void close() {
    if (channel != null) {
      channel.close();
    }
  }
}
