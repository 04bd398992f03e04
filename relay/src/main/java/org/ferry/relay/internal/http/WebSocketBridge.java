package org.ferry.relay.internal.http;

import io.netty.channel.Channel;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.handler.codec.http.FullHttpRequest;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.handler.codec.http.websocketx.BinaryWebSocketFrame;
import io.netty.handler.codec.http.websocketx.CloseWebSocketFrame;
import io.netty.handler.codec.http.websocketx.ContinuationWebSocketFrame;
import io.netty.handler.codec.http.websocketx.PingWebSocketFrame;
import io.netty.handler.codec.http.websocketx.PongWebSocketFrame;
import io.netty.handler.codec.http.websocketx.WebSocketFrame;
import io.netty.handler.codec.http.websocketx.WebSocketServerHandshaker;
import io.netty.handler.codec.http.websocketx.WebSocketServerHandshakerFactory;
import io.netty.util.ReferenceCountUtil;
import org.ferry.relay.internal.pipe.Splice;
import org.ferry.relay.internal.pipe.Upstream;

/**
 * The WebSocket carrier, relay side: after the upgrade, binary frames from the client are the
 * bytes of its TLS session with the server and go upstream as they are; bytes from the server
 * go back as binary frames. If the server cannot be reached the upgrade is answered 502, as a
 * reverse proxy would, so that the client can tell a dead server from a blocked bridge.
 */
final class WebSocketBridge extends ChannelInboundHandlerAdapter {
  static final int MAX_FRAME = 1 << 20;

  private final Channel upstream;
  private final WebSocketServerHandshaker handshaker;

  private WebSocketBridge(Channel upstream, WebSocketServerHandshaker handshaker) {
    this.upstream = upstream;
    this.handshaker = handshaker;
  }

  static void accept(ChannelHandlerContext ctx, FullHttpRequest req, Upstream upstream, Decoy decoy) {
    Channel client = ctx.channel();
    String location = "ws://" + req.headers().get(HttpHeaderNames.HOST, "localhost") + req.uri();
    WebSocketServerHandshaker handshaker =
        new WebSocketServerHandshakerFactory(location, null, false, MAX_FRAME).newHandshaker(req);
    if (handshaker == null) {
      WebSocketServerHandshakerFactory.sendUnsupportedVersionResponse(client);
      return;
    }
    // Nothing more is read from the client until the server end exists.
    client.config().setAutoRead(false);
    ctx.pipeline().remove(ctx.handler());
    req.retain();
    upstream.connect(client.eventLoop(), "ws").addListener((ChannelFutureListener) connected -> {
      if (!connected.isSuccess()) {
        req.release();
        var badGateway = decoy.error(HttpResponseStatus.BAD_GATEWAY, false);
        badGateway.headers().set(HttpHeaderNames.CONNECTION, "close");
        client.writeAndFlush(badGateway).addListener(ChannelFutureListener.CLOSE);
        return;
      }
      Channel server = connected.channel();
      var handshake = handshaker.handshake(client, req);
      req.release();
      handshake.addListener((ChannelFutureListener) done -> {
        if (!done.isSuccess()) {
          client.close();
          server.close();
          return;
        }
        client.pipeline().addLast(new WebSocketBridge(server, handshaker));
        server.pipeline().addLast(new Splice(client, BinaryWebSocketFrame::new));
        client.closeFuture().addListener(f -> Splice.closeAfterFlush(server));
        client.config().setAutoRead(true);
        server.config().setAutoRead(true);
      });
    });
  }

  @Override
  public void channelRead(ChannelHandlerContext ctx, Object msg) {
    if (msg instanceof BinaryWebSocketFrame || msg instanceof ContinuationWebSocketFrame) {
      Splice.forward(ctx.channel(), upstream, ((WebSocketFrame) msg).content());
    } else if (msg instanceof PingWebSocketFrame ping) {
      ctx.writeAndFlush(new PongWebSocketFrame(ping.content()));
    } else if (msg instanceof PongWebSocketFrame) {
      ReferenceCountUtil.release(msg);
    } else if (msg instanceof CloseWebSocketFrame close) {
      handshaker.close(ctx.channel(), close);
    } else {
      // Text frames are not part of the carrier.
      ReferenceCountUtil.release(msg);
      ctx.close();
    }
  }

  @Override
  public void channelReadComplete(ChannelHandlerContext ctx) {
    upstream.flush();
  }

  @Override
  public void channelWritabilityChanged(ChannelHandlerContext ctx) {
    // The client has drained what the server sent: read from the server again.
    if (ctx.channel().isWritable()) {
      upstream.config().setAutoRead(true);
    }
    ctx.fireChannelWritabilityChanged();
  }

  @Override
  public void channelInactive(ChannelHandlerContext ctx) {
    Splice.closeAfterFlush(upstream);
  }

  @Override
  public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
    ctx.close();
  }
}
