package org.ferry.relay.internal.http;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.EventLoop;
import io.netty.handler.codec.http.DefaultFullHttpResponse;
import io.netty.handler.codec.http.FullHttpRequest;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.handler.codec.http.HttpVersion;
import io.netty.util.concurrent.Promise;
import io.netty.util.concurrent.ScheduledFuture;
import java.util.ArrayDeque;
import java.util.HexFormat;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import org.ferry.proto.PollFrames;
import org.ferry.relay.internal.pipe.Upstream;

/**
 * The HTTP polling carrier, relay side (wire format in {@link PollFrames}). Each session owns one
 * upstream connection; its state lives on that connection's event loop. Sessions that see no
 * request for {@link #IDLE_MILLIS} are closed, and at most {@code maxSessions} exist at once.
 */
public final class PollSessions {
  static final long IDLE_MILLIS = 60_000;
  /** Downstream bytes buffered per session before the server connection stops being read. */
  static final int BUFFER_LIMIT = 2 * PollFrames.MAX_PAYLOAD;

  private final Map<String, Session> sessions = new ConcurrentHashMap<>();
  private final Upstream upstream;
  private final Decoy decoy;
  private final int maxSessions;

  public PollSessions(Upstream upstream, Decoy decoy, int maxSessions) {
    this.upstream = upstream;
    this.decoy = decoy;
    this.maxSessions = maxSessions;
  }

  /** Sessions open now. */
  public int size() {
    return sessions.size();
  }

  /** Closes sessions idle longer than {@link #IDLE_MILLIS}; call it now and then. */
  public void closeIdle(long nowNanos) {
    for (Session s : sessions.values()) {
      s.loop.execute(() -> {
        if (nowNanos - s.lastActive > TimeUnit.MILLISECONDS.toNanos(IDLE_MILLIS)) {
          s.close();
        }
      });
    }
  }

  /** Closes every session. */
  public void closeAll() {
    sessions.values().forEach(s -> s.loop.execute(s::close));
  }

  void handle(ChannelHandlerContext ctx, FullHttpRequest req, boolean keepAlive) {
    ByteBuf body = req.content();
    if (body.readableBytes() < PollFrames.REQUEST_HEADER
        || body.readableBytes() > PollFrames.REQUEST_HEADER + PollFrames.MAX_PAYLOAD) {
      notFound(ctx, keepAlive);
      return;
    }
    byte[] id = new byte[PollFrames.SESSION_ID_LENGTH];
    body.readBytes(id);
    long seq = body.readLong();
    int flags = body.readUnsignedByte();
    int hold = Math.min(body.readUnsignedShort(), PollFrames.MAX_HOLD_MILLIS);
    Request request = new Request(ctx, keepAlive, seq, flags, hold, body.retainedSlice());
    String key = HexFormat.of().formatHex(id);
    Session session = sessions.get(key);
    if (session == null) {
      if (seq != 0 || sessions.size() >= maxSessions) {
        request.data.release();
        notFound(ctx, keepAlive);
        return;
      }
      session = open(key, ctx.channel().eventLoop());
    }
    Session s = session;
    s.ready.addListener(f -> s.loop.execute(() -> s.accept(request)));
  }

  private Session open(String key, EventLoop loop) {
    Session fresh = new Session(key, loop);
    Session existing = sessions.putIfAbsent(key, fresh);
    if (existing != null) {
      return existing;
    }
    upstream.connect(loop, "poll").addListener((ChannelFutureListener) f -> {
      if (f.isSuccess()) {
        fresh.server = f.channel();
        f.channel().pipeline().addLast(fresh.new FromServer());
        f.channel().read();
      } else {
        fresh.serverClosed = true;
      }
      fresh.ready.setSuccess(null);
    });
    return fresh;
  }

  private void notFound(ChannelHandlerContext ctx, boolean keepAlive) {
    RelayHttpHandler.respond(ctx, decoy.error(HttpResponseStatus.NOT_FOUND, false), keepAlive);
  }

  private record Request(ChannelHandlerContext ctx, boolean keepAlive, long seq, int flags,
      int holdMillis, ByteBuf data) {}

  /** One polling session; every method runs on {@link #loop}. */
  private final class Session {
    final String key;
    final EventLoop loop;
    final Promise<Void> ready;
    Channel server;
    final ArrayDeque<ByteBuf> downstream = new ArrayDeque<>();
    int buffered;
    boolean serverClosed;
    boolean reading = true;
    long nextSeq;
    long answeredSeq = -1;
    byte[] lastAnswer;
    Request held;
    ScheduledFuture<?> holdTimer;
    long lastActive = System.nanoTime();

    Session(String key, EventLoop loop) {
      this.key = key;
      this.loop = loop;
      this.ready = loop.newPromise();
    }

    void accept(Request r) {
      lastActive = System.nanoTime();
      if (r.seq == answeredSeq && lastAnswer != null) {
        // The client did not get our answer: give it again.
        r.data.release();
        send(r, lastAnswer);
        return;
      }
      if (r.seq != nextSeq || sessions.get(key) != this) {
        r.data.release();
        notFound(r.ctx, r.keepAlive);
        return;
      }
      nextSeq++;
      if (held != null) {
        answer(held);
      }
      if (r.data.isReadable() && server != null && !serverClosed) {
        server.writeAndFlush(r.data);
      } else {
        r.data.release();
      }
      if ((r.flags & PollFrames.CLOSE) != 0) {
        close();
        answer(r);
        return;
      }
      if (buffered > 0 || serverClosed || r.holdMillis == 0) {
        answer(r);
      } else {
        held = r;
        holdTimer = loop.schedule(() -> {
          if (held == r) {
            answer(r);
          }
        }, r.holdMillis, TimeUnit.MILLISECONDS);
      }
    }

    void fromServer(ByteBuf data) {
      downstream.add(data);
      buffered += data.readableBytes();
      if (held != null) {
        answer(held);
      }
      if (buffered < BUFFER_LIMIT) {
        server.read();
      } else {
        reading = false;
      }
    }

    void answer(Request r) {
      if (held == r) {
        held = null;
        if (holdTimer != null) {
          holdTimer.cancel(false);
        }
      }
      int n = Math.min(buffered, PollFrames.MAX_PAYLOAD);
      byte[] body = new byte[PollFrames.RESPONSE_HEADER + n];
      int at = PollFrames.RESPONSE_HEADER;
      while (at < body.length) {
        ByteBuf head = downstream.peek();
        int take = Math.min(head.readableBytes(), body.length - at);
        head.readBytes(body, at, take);
        at += take;
        if (!head.isReadable()) {
          downstream.poll().release();
        }
      }
      buffered -= n;
      if (serverClosed && buffered == 0) {
        body[0] = PollFrames.CLOSE;
        sessions.remove(key, this);
      }
      answeredSeq = r.seq;
      lastAnswer = body;
      send(r, body);
      if (!reading && buffered < BUFFER_LIMIT && server != null && server.isActive()) {
        reading = true;
        server.read();
      }
    }

    void send(Request r, byte[] body) {
      FullHttpResponse response = new DefaultFullHttpResponse(
          HttpVersion.HTTP_1_1, HttpResponseStatus.OK, Unpooled.wrappedBuffer(body));
      response.headers()
          .set("Server", "nginx")
          .set("Content-Type", PollFrames.CONTENT_TYPE)
          .set("Cache-Control", "no-store")
          .setInt("Content-Length", body.length);
      RelayHttpHandler.respond(r.ctx, response, r.keepAlive);
    }

    void close() {
      serverClosed = true;
      if (server != null) {
        server.close();
      }
      if (held != null) {
        answer(held);
      }
      sessions.remove(key, this);
      downstream.forEach(ByteBuf::release);
      downstream.clear();
      buffered = 0;
    }

    final class FromServer extends ChannelInboundHandlerAdapter {
      @Override
      public void channelRead(ChannelHandlerContext ctx, Object msg) {
        fromServer((ByteBuf) msg);
      }

      @Override
      public void channelInactive(ChannelHandlerContext ctx) {
        serverClosed = true;
        if (held != null) {
          answer(held);
        }
      }

      @Override
      public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
        ctx.close();
      }
    }
  }
}
