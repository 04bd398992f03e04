package org.ferry.sdk.internal.carrier;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelPipeline;
import io.netty.channel.EventLoop;
import io.netty.channel.SimpleChannelInboundHandler;
import io.netty.handler.codec.http.DefaultFullHttpRequest;
import io.netty.handler.codec.http.FullHttpRequest;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpClientCodec;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpHeaderValues;
import io.netty.handler.codec.http.HttpMethod;
import io.netty.handler.codec.http.HttpObjectAggregator;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.handler.codec.http.HttpVersion;
import io.netty.handler.proxy.ProxyHandler;
import java.security.SecureRandom;
import java.util.ArrayDeque;
import java.util.concurrent.CompletableFuture;
import org.ferry.proto.BridgeLine;
import org.ferry.proto.PollFrames;

/**
 * The HTTP polling carrier, client side (wire format in {@link PollFrames}): one POST at a time
 * on a kept-alive connection, carrying what is queued upstream and bringing back what the relay
 * holds. Right after traffic the client polls back to back ({@value #EAGER_POLLS} times), since an
 * answer is likely on its way and a held request would make new upstream bytes wait; then the
 * relay may hold a request while it has nothing to send, {@value #MIN_HOLD_MILLIS} ms doubling up
 * to {@value #MAX_HOLD_MILLIS} ms while idle. A request that gets no answer is sent again, on a
 * new connection if need be, up to {@value #RETRIES} times.
 *
 * <p>An answer counts only if it has the relay's framing (200, {@value PollFrames#CONTENT_TYPE},
 * known flags): a block page or captive portal answering in the relay's place fails the pipe. A
 * first answer that closes the session at once means the relay could not reach its server.
 *
 * <p>Through an HTTP proxy, {@code http://} lines are sent as plain proxied requests (absolute
 * URI), which works where a proxy allows no CONNECT; {@code https://} lines use CONNECT.
 */
final class PollPipe implements Pipe {
  static final String USER_AGENT =
      "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0";
  static final int EAGER_POLLS = 8;
  static final int MIN_HOLD_MILLIS = 20;
  static final int MAX_HOLD_MILLIS = 250;
  static final int RETRIES = 3;
  private static final SecureRandom RANDOM = new SecureRandom();

  private final CarrierConnector connector;
  private final BridgeLine line;
  private final Pipe.Listener listener;
  private final boolean forwardProxy;
  private final EventLoop loop;
  private final byte[] sessionId = new byte[PollFrames.SESSION_ID_LENGTH];
  private final CompletableFuture<Pipe> opened = new CompletableFuture<>();
  // All below on `loop`.
  private final ArrayDeque<ByteBuf> queued = new ArrayDeque<>();
  private int queuedBytes;
  private long seq;
  private byte[] inFlight;
  private int attempts;
  private int emptyStreak;
  private boolean closing;
  private boolean closed;
  private Channel channel;

  private PollPipe(CarrierConnector connector, BridgeLine line, Pipe.Listener listener) {
    this.connector = connector;
    this.line = line;
    this.listener = listener;
    this.forwardProxy = !line.tls() && connector.proxy()
        .map(p -> p.type() == ProxySettings.Type.HTTP).orElse(false);
    this.loop = connector.group().next();
    RANDOM.nextBytes(sessionId);
  }

  static CompletableFuture<Pipe> open(CarrierConnector connector, BridgeLine line, Pipe.Listener listener) {
    PollPipe pipe = new PollPipe(connector, line, listener);
    pipe.loop.execute(pipe::sendNext);
    return pipe.opened;
  }

  @Override
  public void write(ByteBuf data) {
    loop.execute(() -> {
      if (closed || closing) {
        data.release();
        return;
      }
      queued.add(data);
      queuedBytes += data.readableBytes();
      if (inFlight == null) {
        sendNext();
      }
    });
  }

  /** Each request carries what was written before it; there is nothing to push. */
  @Override
  public void flush() {}

  @Override
  public void close() {
    loop.execute(() -> {
      if (closed || closing) {
        return;
      }
      closing = true;
      if (inFlight == null) {
        sendNext();
      }
    });
  }

  /** Builds and sends the next request; on the loop, with none in flight. */
  private void sendNext() {
    int n = Math.min(queuedBytes, PollFrames.MAX_PAYLOAD);
    ByteBuf body = Unpooled.buffer(PollFrames.REQUEST_HEADER + n);
    body.writeBytes(sessionId).writeLong(seq).writeByte(closing ? PollFrames.CLOSE : 0);
    body.writeShort(n > 0 || queuedBytes > n || !opened.isDone() || closing ? 0 : hold());
    while (body.writerIndex() < PollFrames.REQUEST_HEADER + n) {
      ByteBuf head = queued.peek();
      int take = Math.min(head.readableBytes(), PollFrames.REQUEST_HEADER + n - body.writerIndex());
      body.writeBytes(head, take);
      if (!head.isReadable()) {
        queued.poll().release();
      }
    }
    queuedBytes -= n;
    if (n > 0) {
      emptyStreak = 0;
    }
    inFlight = new byte[body.readableBytes()];
    body.readBytes(inFlight);
    attempts = 0;
    transmit();
  }

  /** How long the relay may hold the next empty poll. */
  private int hold() {
    if (emptyStreak < EAGER_POLLS) {
      return 0;
    }
    return (int) Math.min(MAX_HOLD_MILLIS, (long) MIN_HOLD_MILLIS << Math.min(emptyStreak - EAGER_POLLS, 8));
  }

  private void transmit() {
    if (channel != null && channel.isActive()) {
      channel.writeAndFlush(request());
      return;
    }
    connect();
  }

  private FullHttpRequest request() {
    String uri = forwardProxy ? "http://" + line.hostPort() + line.path() : line.path();
    FullHttpRequest r = new DefaultFullHttpRequest(
        HttpVersion.HTTP_1_1, HttpMethod.POST, uri, Unpooled.wrappedBuffer(inFlight));
    r.headers()
        .set(HttpHeaderNames.HOST, line.hostPort())
        .set(HttpHeaderNames.USER_AGENT, USER_AGENT)
        .set(HttpHeaderNames.CONTENT_TYPE, PollFrames.CONTENT_TYPE)
        .set(HttpHeaderNames.CACHE_CONTROL, "no-cache")
        .set(HttpHeaderNames.CONNECTION, HttpHeaderValues.KEEP_ALIVE)
        .setInt(HttpHeaderNames.CONTENT_LENGTH, inFlight.length);
    return r;
  }

  private void connect() {
    boolean viaProxy = connector.proxy().isPresent();
    connector.bootstrap(viaProxy, loop).handler(new ChannelInitializer<Channel>() {
      @Override
      protected void initChannel(Channel ch) {
        ChannelPipeline p = ch.pipeline();
        if (viaProxy && !forwardProxy) {
          ProxyHandler ph = CarrierConnector.proxyHandler(connector.proxy().get());
          ph.setConnectTimeoutMillis(connector.connectTimeout().toMillis());
          p.addLast(ph);
        }
        if (line.tls()) {
          p.addLast(connector.tls(line).newHandler(ch.alloc(), line.host(), line.port()));
        }
        p.addLast(new HttpClientCodec(), new HttpObjectAggregator(PollFrames.RESPONSE_HEADER + PollFrames.MAX_PAYLOAD), new Responses());
      }
    }).connect(forwardProxy
        ? connector.proxy().get().address()
        : CarrierConnector.target(line, viaProxy)).addListener((ChannelFutureListener) f -> {
          if (f.isSuccess()) {
            channel = f.channel();
            channel.writeAndFlush(request());
          } else {
            retryOrFail(f.cause());
          }
        });
  }

  private void retryOrFail(Throwable cause) {
    if (inFlight == null || closed) {
      return;
    }
    if (++attempts <= RETRIES && opened.isDone()) {
      channel = null;
      transmit();
    } else {
      fail(cause);
    }
  }

  private void fail(Throwable cause) {
    if (closed) {
      return;
    }
    closed = true;
    inFlight = null;
    queued.forEach(ByteBuf::release);
    queued.clear();
    queuedBytes = 0;
    if (channel != null) {
      channel.close();
    }
    if (!opened.completeExceptionally(CarrierFailure.of(cause, connector.proxy().isPresent()))) {
      listener.onClosed();
    }
  }

  private void answered(FullHttpResponse response) {
    if (inFlight == null || closed) {
      return;
    }
    ByteBuf content = response.content();
    if (!response.status().equals(HttpResponseStatus.OK)) {
      fail(CarrierFailure.httpAnswer(response.status(), "the relay's polling answer"));
      return;
    }
    String type = response.headers().get(HttpHeaderNames.CONTENT_TYPE, "");
    if (!type.equalsIgnoreCase(PollFrames.CONTENT_TYPE) || content.readableBytes() < PollFrames.RESPONSE_HEADER
        || (content.getUnsignedByte(content.readerIndex()) & ~PollFrames.CLOSE) != 0) {
      String what = type.isEmpty() ? "no content type" : CarrierFailure.plain(type.replaceAll(";.*", ""));
      fail(new CarrierFailure(CarrierFailure.Kind.LINE, "answered HTTP 200 with " + what
          + ", not the relay's polling framing (a block page or captive portal?)"));
      return;
    }
    int flags = content.readUnsignedByte();
    if (!opened.isDone() && (flags & PollFrames.CLOSE) != 0 && !content.isReadable()) {
      fail(new CarrierFailure(CarrierFailure.Kind.SERVER_BEHIND_BRIDGE, CarrierFailure.SERVER_BEHIND));
      return;
    }
    inFlight = null;
    seq++;
    opened.complete(this);
    if (content.isReadable()) {
      emptyStreak = 0;
      listener.onData(content.retain());
      listener.onDataBatchEnd();
    } else {
      emptyStreak++;
    }
    if ((flags & PollFrames.CLOSE) != 0 || closing) {
      closed = true;
      if (channel != null) {
        channel.close();
      }
      listener.onClosed();
      return;
    }
    sendNext();
  }

  private final class Responses extends SimpleChannelInboundHandler<FullHttpResponse> {
    @Override
    protected void channelRead0(ChannelHandlerContext ctx, FullHttpResponse msg) {
      answered(msg);
    }

    @Override
    public void channelInactive(ChannelHandlerContext ctx) {
      if (ctx.channel() == channel && inFlight != null) {
        retryOrFail(new java.nio.channels.ClosedChannelException());
      }
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
      ctx.close();
    }
  }
}
