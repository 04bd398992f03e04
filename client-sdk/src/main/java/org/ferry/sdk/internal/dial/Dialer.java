package org.ferry.sdk.internal.dial;

import io.netty.bootstrap.ServerBootstrap;
import io.netty.buffer.ByteBuf;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFactory;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.EventLoop;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.local.LocalAddress;
import io.netty.channel.local.LocalChannel;
import io.netty.channel.local.LocalIoHandler;
import io.netty.channel.local.LocalServerChannel;
import io.netty.handler.ssl.SslHandler;
import io.netty.util.concurrent.DefaultThreadFactory;
import io.netty.util.concurrent.ScheduledFuture;
import java.net.SocketAddress;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import org.ferry.proto.BridgeLine;
import org.ferry.proto.ServerAddress;
import org.ferry.sdk.internal.carrier.CarrierConnector;
import org.ferry.sdk.internal.carrier.CarrierFailure;
import org.ferry.sdk.internal.carrier.Pipe;
import org.ferry.sdk.internal.net.TlsHandshakeTimeout;

/**
 * Connects gRPC to a server over whichever carrier gets through. gRPC dials an in-JVM address
 * (a Netty local channel, no socket); for each such connection the dialer races the server's
 * lines in {@link RouteBook#plan} order, starting one every {@code stagger} or as soon as all
 * started ones have failed, and sends gRPC's first bytes (the TLS ClientHello) down each. The
 * first carrier that brings back the start of a TLS handshake carries the connection; the others
 * are closed. A carrier whose answer is not TLS (a block page, a captive portal) has failed, and
 * the race goes on without it. The TLS handshake is gRPC's own, pinned to the server's key, and
 * a line counts as working only once that handshake has completed over it (gRPC's channels are
 * made by {@link #channelFactory}, which reports it); a line over which it did not complete has
 * failed. A carrier is thus chosen by what actually reaches the server, not by what connects.
 *
 * <p>When the winning carrier dies, the gRPC connection dies with it, and gRPC's reconnect
 * brings a new race. A carrier that dies within {@link #YOUNG} is counted as failed.
 *
 * <p>A line can also stall: a middlebox that lets the handshake through and then silently drops
 * everything. While a call {@linkplain #callStarted waits} for its answer and nothing at all has
 * come back over the connection for {@link #stallAfter} (a quarter of the call timeout, at least
 * {@link #MIN_STALL}), the line has failed: the connection is closed, so that the call can be
 * made again over the next line; a call that timed out with nothing come back since it started
 * {@linkplain #timedOut counts against its line} in the same way.
 *
 * <p>A bridge that answers as a relay but whose server does not ({@link
 * CarrierFailure.Kind#SERVER_BEHIND_BRIDGE}) is not counted as failed: the bridge is fine.
 */
public final class Dialer implements AutoCloseable {
  static final Duration YOUNG = Duration.ofSeconds(10);
  static final Duration MIN_STALL = Duration.ofSeconds(2);
  /** TLS record type of a handshake message: what a TLS server's first answer starts with (RFC 8446 5.1). */
  private static final int TLS_HANDSHAKE = 22;

  private final CarrierConnector connector;
  private final RouteBook routes;
  private final Duration stagger;
  private final Duration timeout;
  private final Duration stallAfter;
  private final EventLoopGroup localGroup =
      new MultiThreadIoEventLoopGroup(1, new DefaultThreadFactory("ferry-dial", true), LocalIoHandler.newFactory());
  private final Map<ServerAddress, Channel> listeners = new HashMap<>();
  private final Map<ServerAddress, String> lastFailures = new ConcurrentHashMap<>();
  /** Races by the address of gRPC's end of their local channel. */
  private final Map<SocketAddress, Race> races = new ConcurrentHashMap<>();
  /** Per server, the race whose connection was confirmed last. */
  private final Map<ServerAddress, Race> current = new ConcurrentHashMap<>();
  private final Map<ServerAddress, Set<Call>> waiting = new ConcurrentHashMap<>();
  /** Per server, when (System.nanoTime) a connection was last closed because its line stalled. */
  private final Map<ServerAddress, Long> stalledAt = new ConcurrentHashMap<>();

  public Dialer(CarrierConnector connector, RouteBook routes, Duration stagger, Duration timeout) {
    this.connector = connector;
    this.routes = routes;
    this.stagger = stagger;
    this.timeout = timeout;
    this.stallAfter = timeout.dividedBy(4).compareTo(MIN_STALL) < 0 ? MIN_STALL : timeout.dividedBy(4);
  }

  /**
   * The channels gRPC must dial {@link #address} with: local channels that tell this dialer when
   * their TLS handshake with the server (pinned by gRPC's trust manager) has completed, and
   * whose handshake may take the whole call timeout (a slow carrier may take long to open).
   */
  public ChannelFactory<LocalChannel> channelFactory() {
    return () -> {
      LocalChannel ch = new LocalChannel();
      ch.pipeline().addFirst(new HandshakeWatch());
      TlsHandshakeTimeout.addTo(ch, timeout);
      return ch;
    };
  }

  /** How long a waiting call may see nothing come back before its line counts as stalled. */
  public Duration stallAfter() {
    return stallAfter;
  }

  /** A call to {@code server} now waits for its answer; {@link Call#done} when it has it. */
  public Call callStarted(ServerAddress server) {
    Call c = new Call(server, System.nanoTime());
    waiting.computeIfAbsent(server, s -> ConcurrentHashMap.newKeySet()).add(c);
    return c;
  }

  /** A call that waits for its answer from a server; see {@link #callStarted}. */
  public final class Call {
    private final ServerAddress server;
    private final long startedAt;

    private Call(ServerAddress server, long startedAt) {
      this.server = server;
      this.startedAt = startedAt;
    }

    /** The call has its answer, or has ended. */
    public void done() {
      Set<Call> set = waiting.get(server);
      if (set != null) {
        set.remove(this);
      }
    }

    /** Whether, since this call started, a connection to its server was closed because its line stalled. */
    public boolean lineStalledSince() {
      Long at = stalledAt.get(server);
      return at != null && at - startedAt >= 0;
    }

    /**
     * This call timed out: if nothing came back over its connection since it started, the line
     * counts as failed and the connection is closed, so the next call dials again.
     */
    public void timedOut() {
      Race r = current.get(server);
      if (r != null) {
        r.loop.execute(() -> r.checkStall(startedAt, true));
      }
    }
  }

  /** The event loop group gRPC channels from {@link #address} must use. */
  public EventLoopGroup localGroup() {
    return localGroup;
  }

  public RouteBook routes() {
    return routes;
  }

  /** The in-JVM address at which connections to {@code server} are dialed. */
  public synchronized LocalAddress address(ServerAddress server) {
    Channel ch = listeners.computeIfAbsent(server, s -> new ServerBootstrap()
        .group(localGroup)
        .channel(LocalServerChannel.class)
        .childHandler(new ChannelInitializer<LocalChannel>() {
          @Override
          protected void initChannel(LocalChannel local) {
            local.pipeline().addLast(new Race(s, local));
          }
        })
        .bind(new LocalAddress("ferry-" + UUID.randomUUID())).syncUninterruptibly().channel());
    return (LocalAddress) ch.localAddress();
  }

  /**
   * Why the last dial to {@code server} found no way through, one clause per line tried (no
   * secrets in it), if the last dial failed.
   */
  public Optional<String> lastFailure(ServerAddress server) {
    return Optional.ofNullable(lastFailures.get(server));
  }

  @Override
  public void close() {
    synchronized (this) {
      listeners.values().forEach(Channel::close);
      listeners.clear();
    }
    localGroup.shutdownGracefully(0, 1, TimeUnit.SECONDS).syncUninterruptibly();
  }

  /** gRPC's end of a local channel: finds gRPC's TLS handler and reports when its handshake completed. */
  private final class HandshakeWatch extends ChannelInboundHandlerAdapter {
    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
      // The server's first bytes arrive after gRPC has put its TLS handler in place.
      SslHandler tls = ctx.pipeline().get(SslHandler.class);
      if (tls != null) {
        ctx.pipeline().remove(this);
        SocketAddress at = ctx.channel().localAddress();
        tls.handshakeFuture().addListener(f -> {
          Race r = races.get(at);
          if (f.isSuccess() && r != null) {
            r.loop.execute(r::confirmed);
          }
        });
      }
      ctx.fireChannelRead(msg);
    }
  }

  /** One gRPC connection's carrier race; all state on the local channel's loop. */
  private final class Race extends ChannelInboundHandlerAdapter {
    private final ServerAddress server;
    private final Channel local;
    private final EventLoop loop;
    private final List<ByteBuf> firstFlight = new ArrayList<>();
    private final List<Attempt> attempts = new ArrayList<>();
    private List<BridgeLine> plan;
    private int next;
    private Attempt winner;
    /** The server's TLS handshake completed over the winner. */
    private boolean confirmed;
    private boolean lineFailed;
    private long wonAt;
    private long lastDown;
    private boolean over;
    private ScheduledFuture<?> staggerTimer;
    private ScheduledFuture<?> deadline;
    private ScheduledFuture<?> stallTimer;

    Race(ServerAddress server, Channel local) {
      this.server = server;
      this.local = local;
      this.loop = local.eventLoop();
    }

    @Override
    public void channelActive(ChannelHandlerContext ctx) {
      races.put(local.remoteAddress(), this);
      plan = routes.plan(server);
      deadline = loop.schedule(this::giveUp, timeout.toMillis(), TimeUnit.MILLISECONDS);
      startNext();
      ctx.fireChannelActive();
    }

    private void startNext() {
      if (staggerTimer != null) {
        staggerTimer.cancel(false);
        staggerTimer = null;
      }
      if (over || winner != null || next >= plan.size()) {
        return;
      }
      Attempt a = new Attempt(plan.get(next++));
      attempts.add(a);
      connector.open(a.line, a).whenComplete((pipe, error) -> loop.execute(() -> a.opened(pipe, error)));
      if (next < plan.size()) {
        staggerTimer = loop.schedule(this::startNext, stagger.toMillis(), TimeUnit.MILLISECONDS);
      }
    }

    /**
     * An attempt failed: start the next now if nothing else is still trying; give up if none is
     * left. A bridge whose server did not answer is not held against the bridge.
     */
    private void attemptFailed(Attempt a, CarrierFailure.Kind kind) {
      a.dead = true;
      if (kind == CarrierFailure.Kind.LINE) {
        routes.failed(server, a.line);
      } else {
        routes.bridgeAnswered(server, a.line);
      }
      if (winner != null || over) {
        return;
      }
      if (attempts.stream().allMatch(x -> x.dead)) {
        if (next < plan.size()) {
          startNext();
        } else {
          giveUp();
        }
      }
    }

    private void giveUp() {
      if (winner == null && !over) {
        over = true;
        StringBuilder why = new StringBuilder();
        for (Attempt a : attempts) {
          why.append(why.length() == 0 ? "" : "; ").append(a.line.shortForm()).append(": ")
              .append(a.failure != null ? a.failure : "no answer in time");
        }
        if (next < plan.size()) {
          why.append("; not tried in time: ").append(plan.size() - next).append(" more");
        }
        lastFailures.put(server, why.toString());
        attempts.forEach(Attempt::close);
        local.close();
      }
    }

    /** gRPC's TLS handshake with the server completed over the winner: the line works. */
    void confirmed() {
      if (winner == null || confirmed || over) {
        return;
      }
      confirmed = true;
      current.put(server, this);
      routes.succeeded(server, winner.line);
      lastFailures.remove(server);
      long every = Math.max(100, stallAfter.toMillis() / 4);
      stallTimer = loop.scheduleAtFixedRate(() -> checkStall(Long.MAX_VALUE, false), every, every, TimeUnit.MILLISECONDS);
    }

    /**
     * Whether the winner's line has stalled: a call waits (or, if {@code timedOut}, the call that
     * started at {@code since} timed out) and nothing has come back for long enough. If so the
     * line has failed and the connection is closed.
     */
    void checkStall(long since, boolean timedOut) {
      if (!confirmed || over || lineFailed || current.get(server) != this) {
        return;
      }
      long now = System.nanoTime();
      long quietSince;
      if (timedOut) {
        quietSince = since;
      } else {
        quietSince = now;
        for (Call c : waiting.getOrDefault(server, Set.of())) {
          quietSince = c.startedAt - quietSince < 0 ? c.startedAt : quietSince;
        }
      }
      // System.nanoTime values are compared by their difference only.
      quietSince = lastDown - quietSince > 0 ? lastDown : quietSince;
      if (timedOut ? lastDown - since < 0 : now - quietSince > stallAfter.toNanos()) {
        long quiet = TimeUnit.NANOSECONDS.toSeconds(now - quietSince);
        failLine("stalled: nothing came back for " + Math.max(1, quiet) + " s");
        stalledAt.put(server, now);
        local.close();
      }
    }

    /** The winner's line failed after it won; no other failure is recorded for it. */
    private void failLine(String why) {
      if (!lineFailed) {
        lineFailed = true;
        routes.failed(server, winner.line);
        lastFailures.put(server, winner.line.shortForm() + ": " + why);
      }
    }

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
      ByteBuf buf = (ByteBuf) msg;
      if (winner != null) {
        winner.pipe.write(buf);
        return;
      }
      firstFlight.add(buf);
      for (Attempt a : attempts) {
        if (a.pipe != null && !a.dead) {
          a.pipe.write(buf.retainedDuplicate());
        }
      }
    }

    @Override
    public void channelReadComplete(ChannelHandlerContext ctx) {
      // gRPC's writes arrive one by one; one flush per batch keeps the carrier's writes few.
      if (winner != null) {
        winner.pipe.flush();
      } else {
        attempts.stream().filter(a -> a.pipe != null && !a.dead).forEach(a -> a.pipe.flush());
      }
    }

    @Override
    public void channelInactive(ChannelHandlerContext ctx) {
      if (winner != null && !confirmed) {
        // gRPC gave up on what came over this line: the server's handshake did not complete.
        failLine("the TLS handshake with the server did not complete over it");
      }
      over = true;
      races.remove(local.remoteAddress(), this);
      current.remove(server, this);
      attempts.forEach(Attempt::close);
      release();
      for (ScheduledFuture<?> f : new ScheduledFuture<?>[] {deadline, staggerTimer, stallTimer}) {
        if (f != null) {
          f.cancel(false);
        }
      }
      if (winner != null) {
        routes.ended(server, winner.line);
      }
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
      ctx.close();
    }

    private void release() {
      firstFlight.forEach(ByteBuf::release);
      firstFlight.clear();
    }

    private void won(Attempt a) {
      winner = a;
      wonAt = System.nanoTime();
      deadline.cancel(false);
      if (staggerTimer != null) {
        staggerTimer.cancel(false);
      }
      release();
      for (Attempt other : attempts) {
        if (other != a) {
          other.close();
        }
      }
    }

    private final class Attempt implements Pipe.Listener {
      final BridgeLine line;
      Pipe pipe;
      boolean dead;
      String failure;

      Attempt(BridgeLine line) {
        this.line = line;
      }

      void opened(Pipe p, Throwable error) {
        if (error != null) {
          failure = CarrierFailure.describe(error);
          attemptFailed(this, CarrierFailure.kindOf(error));
          return;
        }
        pipe = p;
        if (over || winner != null) {
          p.close();
          return;
        }
        for (ByteBuf b : firstFlight) {
          p.write(b.retainedDuplicate());
        }
        p.flush();
      }

      @Override
      public void onData(ByteBuf data) {
        loop.execute(() -> {
          if (winner == null && !over && !dead) {
            if (!startsLikeTls(data)) {
              data.release();
              failure = "answered, but not with the server's TLS (a block page or captive portal?)";
              close();
              attemptFailed(this, CarrierFailure.Kind.LINE);
              return;
            }
            won(this);
          }
          if (winner == this && local.isActive()) {
            lastDown = System.nanoTime();
            local.write(data);
          } else {
            data.release();
          }
        });
      }

      @Override
      public void onDataBatchEnd() {
        loop.execute(() -> {
          if (winner == this) {
            local.flush();
          }
        });
      }

      @Override
      public void onClosed() {
        loop.execute(() -> {
          if (winner == this) {
            if (confirmed && System.nanoTime() - wonAt < YOUNG.toNanos() && !over) {
              failLine("closed soon after it connected");
            } else if (!confirmed) {
              failLine("closed before the TLS handshake with the server completed");
            }
            local.close();
          } else if (!dead) {
            if (line.kind() == BridgeLine.Kind.OBFS4) {
              // obfs4proxy reports the SOCKS connection open only once the bridge's obfs4
              // handshake is done: the bridge answered, its server did not.
              failure = "the bridge answered, but the server behind it did not";
              attemptFailed(this, CarrierFailure.Kind.SERVER_BEHIND_BRIDGE);
            } else {
              failure = "closed before the server answered";
              attemptFailed(this, CarrierFailure.Kind.LINE);
            }
          }
        });
      }

      void close() {
        dead = true;
        if (pipe != null) {
          pipe.close();
        }
      }
    }
  }

  /** Whether the first bytes back look like a TLS server's first record (RFC 8446 5.1). */
  static boolean startsLikeTls(ByteBuf data) {
    int at = data.readerIndex();
    int n = data.readableBytes();
    return n > 0 && data.getUnsignedByte(at) == TLS_HANDSHAKE && (n < 2 || data.getUnsignedByte(at + 1) == 3);
  }
}
