package org.ferry.relay.internal.http;

import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.ChannelPipeline;
import io.netty.channel.socket.SocketChannel;
import io.netty.handler.codec.http.HttpObjectAggregator;
import io.netty.handler.codec.http.HttpServerCodec;
import io.netty.handler.ssl.OptionalSslHandler;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.timeout.IdleStateEvent;
import io.netty.handler.timeout.IdleStateHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.SimpleChannelInboundHandler;
import io.netty.handler.codec.http.FullHttpRequest;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpHeaderValues;
import io.netty.handler.codec.http.HttpMethod;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.handler.codec.http.HttpUtil;
import io.netty.handler.codec.http.HttpVersion;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.Optional;
import org.ferry.proto.PollFrames;
import org.ferry.relay.internal.pipe.Fallback;
import org.ferry.relay.internal.pipe.Upstream;

/**
 * Routes each HTTP request on a relay's web port: the secret path with a WebSocket upgrade goes
 * to {@link WebSocketBridge}, a POST to the secret path to {@link PollSessions}, and everything
 * else gets the {@link Decoy}. A request to the secret path that fits neither carrier (or one
 * that is switched off) gets the same 404 as any unknown path. With a fallback web server, only
 * connections that open with a carrier's request get here (see {@link FallbackGate}).
 */
public final class RelayHttpHandler extends SimpleChannelInboundHandler<FullHttpRequest> {
  /** What the routing needs, shared by all connections of one relay. */
  public record Routes(
      byte[] secretPath, boolean webSocket, PollSessions poll, Upstream upstream, Decoy decoy) {}

  /** Web connections idle this long are closed. */
  static final int IDLE_SECONDS = 300;

  private final Routes routes;

  public RelayHttpHandler(Routes routes) {
    this.routes = routes;
  }

  /**
   * The web port's pipeline: TLS if the client starts with it (plain HTTP too, for a
   * TLS-terminating proxy in front), HTTP/1.1, then the routing. With a fallback web server,
   * a {@link FallbackGate} after TLS lets only carriers' requests through to HTTP and splices
   * every other connection to the fallback; without one, the {@link Decoy} answers them.
   */
  public static ChannelInitializer<SocketChannel> webPort(
      SslContext tls, Routes routes, Optional<Fallback> fallback) {
    CarrierHead carrier = new CarrierHead(routes.secretPath(), routes.webSocket(), routes.poll() != null);
    return new ChannelInitializer<>() {
      @Override
      protected void initChannel(SocketChannel ch) {
        ChannelPipeline p = ch.pipeline();
        p.addLast(new IdleStateHandler(0, 0, IDLE_SECONDS) {
          @Override
          protected void channelIdle(ChannelHandlerContext ctx, IdleStateEvent evt) {
            ctx.close();
          }
        });
        if (fallback.isPresent()) {
          ch.config().setOption(ChannelOption.ALLOW_HALF_CLOSURE, true);
          p.addLast(new TlsOrPlain(tls),
              new FallbackGate(carrier, fallback.get()::connect, FallbackGate.SNIFF_MILLIS));
        } else {
          p.addLast(new OptionalSslHandler(tls));
        }
        p.addLast(new HttpServerCodec(),
            new HttpObjectAggregator(PollFrames.REQUEST_HEADER + PollFrames.MAX_PAYLOAD),
            new RelayHttpHandler(routes));
      }
    };
  }

  @Override
  protected void channelRead0(ChannelHandlerContext ctx, FullHttpRequest req) {
    boolean head = req.method().equals(HttpMethod.HEAD);
    if (!req.decoderResult().isSuccess()
        || (!req.protocolVersion().equals(HttpVersion.HTTP_1_1) && !req.protocolVersion().equals(HttpVersion.HTTP_1_0))) {
      // Garbage, or another protocol's opening (HTTP/2's "PRI * HTTP/2.0"): nginx says 400 and hangs up.
      respond(ctx, routes.decoy().error(HttpResponseStatus.BAD_REQUEST, false), false);
      return;
    }
    boolean keepAlive = HttpUtil.isKeepAlive(req);
    String path = req.uri();
    int query = path.indexOf('?');
    if (query >= 0) {
      path = path.substring(0, query);
    }
    if (isSecret(path)) {
      if (routes.webSocket() && req.method().equals(HttpMethod.GET) && isUpgrade(req)) {
        WebSocketBridge.accept(ctx, req, routes.upstream(), routes.decoy());
        return;
      }
      if (routes.poll() != null && req.method().equals(HttpMethod.POST)) {
        routes.poll().handle(ctx, req, keepAlive);
        return;
      }
    }
    if (req.method().equals(HttpMethod.GET) || head) {
      FullHttpResponse page = path.equals("/") || path.equals("/index.html")
          ? routes.decoy().welcome(head)
          : routes.decoy().error(HttpResponseStatus.NOT_FOUND, head);
      respond(ctx, page, keepAlive);
    } else {
      respond(ctx, routes.decoy().error(new HttpResponseStatus(405, "Not Allowed"), false), keepAlive);
    }
  }

  private boolean isSecret(String path) {
    return MessageDigest.isEqual(routes.secretPath(), path.getBytes(StandardCharsets.UTF_8));
  }

  private static boolean isUpgrade(FullHttpRequest req) {
    return req.headers().containsValue(HttpHeaderNames.CONNECTION, HttpHeaderValues.UPGRADE, true)
        && req.headers().contains(HttpHeaderNames.UPGRADE, HttpHeaderValues.WEBSOCKET, true);
  }

  static void respond(ChannelHandlerContext ctx, FullHttpResponse response, boolean keepAlive) {
    if (keepAlive) {
      response.headers().set("Connection", HttpHeaderValues.KEEP_ALIVE);
      ctx.writeAndFlush(response);
    } else {
      response.headers().set("Connection", HttpHeaderValues.CLOSE);
      ctx.writeAndFlush(response).addListener(ChannelFutureListener.CLOSE);
    }
  }

  @Override
  public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
    // Malformed TLS or HTTP from a prober: close quietly, log nothing about who it was.
    ctx.close();
  }
}
