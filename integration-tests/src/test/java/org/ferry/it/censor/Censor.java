package org.ferry.it.censor;

import io.netty.bootstrap.Bootstrap;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufUtil;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.nio.NioIoHandler;
import io.netty.channel.socket.SocketChannel;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import io.netty.channel.socket.nio.NioSocketChannel;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.EnumSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A censoring middlebox for tests: a TCP forwarder on loopback in front of one target that
 * blocks connections by rule, the way national firewalls do. Rules look at what the client sends
 * first (TLS ClientHello, the HTTP/2 preface, a WebSocket upgrade, any HTTP request), or act on
 * the whole connection (block the port, drop silently, reset after N bytes, throttle). Blocking
 * is a TCP reset. Rules can change while it runs; they apply to new connections. It can also
 * stall connections: forward some bytes, then drop everything silently and keep the connection
 * open, as a middlebox that lets a handshake through and blackholes the rest.
 */
public final class Censor implements AutoCloseable {
  /** What to block. */
  public enum Rule {
    /** Reset every connection at once (a blocked IP and port). */
    BLOCK_PORT,
    /** Accept and never answer (a firewall that drops packets). */
    DROP,
    /** Reset when the client's first bytes are a TLS ClientHello. */
    TLS_CLIENT_HELLO,
    /** Reset on the cleartext HTTP/2 connection preface. */
    HTTP2_PREFACE,
    /** Reset on an HTTP request that asks for a WebSocket upgrade. */
    WEBSOCKET_UPGRADE,
    /** Reset on any cleartext HTTP/1.x request. */
    HTTP_REQUEST,
  }

  private static final int INSPECT = 4096;
  private static final byte[] H2_PREFACE = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".getBytes(StandardCharsets.US_ASCII);
  private static final String[] METHODS = {"GET ", "POST ", "HEAD ", "PUT ", "OPTIONS ", "CONNECT ", "DELETE "};

  private final EventLoopGroup group = new MultiThreadIoEventLoopGroup(2, NioIoHandler.newFactory());
  private final InetSocketAddress target;
  private final Channel listener;
  private volatile Set<Rule> rules = EnumSet.noneOf(Rule.class);
  private volatile long resetAfterBytes;
  private final AtomicInteger resetsLeft = new AtomicInteger();
  private volatile long stallAfterBytes;
  private final AtomicInteger stalls = new AtomicInteger();
  private volatile long throttleBytesPerSecond;
  private volatile boolean recording;
  private final List<byte[]> recorded = Collections.synchronizedList(new ArrayList<>());
  private final AtomicInteger connections = new AtomicInteger();
  private final AtomicInteger blocked = new AtomicInteger();
  private final AtomicInteger cuts = new AtomicInteger();
  private final Set<FromClient> live = java.util.concurrent.ConcurrentHashMap.newKeySet();

  private Censor(InetSocketAddress target) {
    this.target = target;
    this.listener = new ServerBootstrap()
        .group(group)
        .channel(NioServerSocketChannel.class)
        .childOption(ChannelOption.AUTO_READ, false)
        .childHandler(new ChannelInitializer<SocketChannel>() {
          @Override
          protected void initChannel(SocketChannel ch) {
            ch.pipeline().addLast(new FromClient());
          }
        })
        .bind(new InetSocketAddress("127.0.0.1", 0)).syncUninterruptibly().channel();
  }

  /** Starts forwarding from a fresh loopback port to {@code target}, blocking nothing yet. */
  public static Censor start(InetSocketAddress target) {
    return new Censor(target);
  }

  public int port() {
    return ((InetSocketAddress) listener.localAddress()).getPort();
  }

  /** Replaces the rules. */
  public Censor block(Rule... newRules) {
    Set<Rule> set = EnumSet.noneOf(Rule.class);
    set.addAll(List.of(newRules));
    this.rules = set;
    return this;
  }

  /**
   * Resets every open connection once {@code bytes} more have crossed it (both directions
   * together), and each of the next {@code newConnectionsToCut} new ones after {@code bytes}.
   */
  public Censor resetAfter(long bytes, int newConnectionsToCut) {
    this.resetAfterBytes = bytes;
    this.resetsLeft.set(newConnectionsToCut);
    for (FromClient c : live) {
      c.client.eventLoop().execute(() -> c.cutAfter = c.transferred + bytes);
    }
    return this;
  }

  /**
   * Stalls every open connection once {@code bytes} more have crossed it (both directions
   * together), and every new one after {@code bytes}: from then on nothing is forwarded either
   * way, nothing is reset, and the connection stays open. 0 stops stalling new connections.
   */
  public Censor stallAfter(long bytes) {
    this.stallAfterBytes = bytes;
    if (bytes > 0) {
      for (FromClient c : live) {
        c.client.eventLoop().execute(() -> c.stallAt = c.transferred + bytes);
      }
    }
    return this;
  }

  /** Resets every open connection now (both its sides), as a link that goes down does. */
  public Censor cutAll() {
    for (FromClient c : live) {
      c.client.eventLoop().execute(() -> {
        cuts.incrementAndGet();
        reset(c.client);
        reset(c.server);
      });
    }
    return this;
  }

  /** Connections stalled by {@link #stallAfter}. */
  public int stalls() {
    return stalls.get();
  }

  /** Limits each connection to about {@code bytesPerSecond} each way; 0 for no limit. */
  public Censor throttle(long bytesPerSecond) {
    this.throttleBytesPerSecond = bytesPerSecond;
    return this;
  }

  /** Keeps the first bytes each client sends (up to 8 KiB), for replaying them as probes. */
  public Censor record() {
    this.recording = true;
    return this;
  }

  public List<byte[]> recorded() {
    synchronized (recorded) {
      return List.copyOf(recorded);
    }
  }

  public int connections() {
    return connections.get();
  }

  /** Connections reset or dropped by a rule. */
  public int blocked() {
    return blocked.get();
  }

  /** Connections reset by {@link #resetAfter}. */
  public int cuts() {
    return cuts.get();
  }

  @Override
  public void close() {
    listener.close().syncUninterruptibly();
    group.shutdownGracefully(0, 1, TimeUnit.SECONDS).syncUninterruptibly();
  }

  static void reset(Channel ch) {
    if (ch != null && ch.isOpen()) {
      ch.config().setOption(ChannelOption.SO_LINGER, 0);
      ch.close();
    }
  }

  /** Which first-flight rule {@code prefix} trips, if any. */
  static Rule match(Set<Rule> rules, byte[] prefix) {
    if (rules.contains(Rule.TLS_CLIENT_HELLO) && prefix.length >= 6
        && prefix[0] == 0x16 && prefix[1] == 0x03 && prefix[5] == 0x01) {
      return Rule.TLS_CLIENT_HELLO;
    }
    if (rules.contains(Rule.HTTP2_PREFACE) && startsWith(prefix, H2_PREFACE, Math.min(prefix.length, H2_PREFACE.length))) {
      return Rule.HTTP2_PREFACE;
    }
    String text = new String(prefix, StandardCharsets.ISO_8859_1);
    boolean http = false;
    for (String m : METHODS) {
      http |= text.startsWith(m);
    }
    if (rules.contains(Rule.WEBSOCKET_UPGRADE) && http && text.toLowerCase(Locale.ROOT).contains("upgrade: websocket")) {
      return Rule.WEBSOCKET_UPGRADE;
    }
    if (rules.contains(Rule.HTTP_REQUEST) && http) {
      return Rule.HTTP_REQUEST;
    }
    return null;
  }

  private static boolean startsWith(byte[] data, byte[] prefix, int n) {
    if (n < 4) {
      return false;
    }
    for (int i = 0; i < n; i++) {
      if (data[i] != prefix[i]) {
        return false;
      }
    }
    return true;
  }

  /** The client's side of one connection. */
  private final class FromClient extends ChannelInboundHandlerAdapter {
    private final ByteBuf seen = Unpooled.buffer();
    private Set<Rule> active;
    private Channel server;
    private Pump toServer;
    private Channel client;
    private long cutAfter;
    private long stallAt;
    private boolean stalled;
    /** Bytes forwarded both ways; both directions run on the client's event loop. */
    private long transferred;

    @Override
    public void channelActive(ChannelHandlerContext ctx) {
      connections.incrementAndGet();
      active = rules;
      client = ctx.channel();
      live.add(this);
      if (active.contains(Rule.BLOCK_PORT)) {
        blocked.incrementAndGet();
        reset(client);
        return;
      }
      if (active.contains(Rule.DROP)) {
        blocked.incrementAndGet();
        client.config().setAutoRead(true);
        client.pipeline().replace(this, "drop", new ChannelInboundHandlerAdapter() {
          @Override
          public void channelRead(ChannelHandlerContext c, Object msg) {
            ((ByteBuf) msg).release();
          }
        });
        return;
      }
      cutAfter = resetsLeft.getAndUpdate(n -> Math.max(0, n - 1)) > 0 ? resetAfterBytes : 0;
      stallAt = stallAfterBytes;
      new Bootstrap().group(client.eventLoop()).channel(NioSocketChannel.class)
          .option(ChannelOption.AUTO_READ, false)
          .handler(new ChannelInboundHandlerAdapter())
          .connect(target).addListener((ChannelFutureListener) f -> {
            if (!f.isSuccess()) {
              reset(client);
              return;
            }
            server = f.channel();
            toServer = new Pump(client, server);
            Pump toClient = new Pump(server, client);
            server.pipeline().addLast(new ChannelInboundHandlerAdapter() {
              @Override
              public void channelRead(ChannelHandlerContext c, Object msg) {
                toClient.forward((ByteBuf) msg);
              }

              @Override
              public void channelInactive(ChannelHandlerContext c) {
                client.close();
              }

              @Override
              public void exceptionCaught(ChannelHandlerContext c, Throwable cause) {
                reset(client);
                c.close();
              }
            });
            client.read();
            server.read();
          });
    }

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
      ByteBuf buf = (ByteBuf) msg;
      if (seen.readableBytes() < INSPECT) {
        seen.writeBytes(buf, buf.readerIndex(), Math.min(buf.readableBytes(), INSPECT - seen.readableBytes()));
        byte[] prefix = ByteBufUtil.getBytes(seen);
        if (recording && prefix.length >= 1) {
          recorded.add(prefix);
        }
        if (match(active, prefix) != null) {
          blocked.incrementAndGet();
          buf.release();
          reset(ctx.channel());
          reset(server);
          return;
        }
      }
      toServer.forward(buf);
    }

    @Override
    public void channelInactive(ChannelHandlerContext ctx) {
      live.remove(this);
      seen.release();
      if (server != null) {
        server.close();
      }
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
      reset(ctx.channel());
      reset(server);
    }

    /** One direction: forwards, counts for the reset rule, throttles, reads again once written. */
    private final class Pump {
      private final Channel from;
      private final Channel to;

      Pump(Channel from, Channel to) {
        this.from = from;
        this.to = to;
      }

      void forward(ByteBuf buf) {
        int n = buf.readableBytes();
        transferred += n;
        if (cutAfter > 0 && transferred > cutAfter) {
          cuts.incrementAndGet();
          cutAfter = 0;
          buf.release();
          reset(from);
          reset(to);
          return;
        }
        if (stalled || (stallAt > 0 && transferred > stallAt)) {
          if (!stalled) {
            stalled = true;
            stalls.incrementAndGet();
          }
          // Blackholed: swallow, and read on so that the sender's side sees its bytes go.
          buf.release();
          from.read();
          return;
        }
        to.writeAndFlush(buf).addListener((ChannelFutureListener) f -> {
          if (!f.isSuccess()) {
            reset(from);
            return;
          }
          long bps = throttleBytesPerSecond;
          if (bps > 0) {
            from.eventLoop().schedule(() -> from.read(), Math.max(1, n * 1000L / bps), TimeUnit.MILLISECONDS);
          } else {
            from.read();
          }
        });
      }
    }
  }
}
