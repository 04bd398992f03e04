package org.ferry.sdk.internal.dial;

import io.netty.bootstrap.ServerBootstrap;
import io.netty.buffer.ByteBuf;
import io.netty.channel.Channel;
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
import io.netty.util.concurrent.DefaultThreadFactory;
import io.netty.util.concurrent.ScheduledFuture;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import org.ferry.proto.BridgeLine;
import org.ferry.proto.ServerAddress;
import org.ferry.sdk.internal.carrier.CarrierConnector;
import org.ferry.sdk.internal.carrier.Pipe;

/**
 * Connects gRPC to a server over whichever carrier gets through. gRPC dials an in-JVM address
 * (a Netty local channel, no socket); for each such connection the dialer races the server's
 * lines in {@link RouteBook#plan} order, starting one every {@code stagger} or as soon as all
 * started ones have failed, and sends gRPC's first bytes (the TLS ClientHello) down each. The
 * first carrier that brings back an answer wins and carries the connection; the others are
 * closed. The TLS handshake that follows is still gRPC's own, pinned to the server's key, so a
 * carrier is chosen by what actually reaches the server, not by what merely connects.
 *
 * <p>When the winning carrier dies, the gRPC connection dies with it, and gRPC's reconnect
 * brings a new race. A carrier that dies within {@link #YOUNG} is counted as failed.
 */
public final class Dialer implements AutoCloseable {
  static final Duration YOUNG = Duration.ofSeconds(10);

  private final CarrierConnector connector;
  private final RouteBook routes;
  private final Duration stagger;
  private final Duration timeout;
  private final EventLoopGroup localGroup =
      new MultiThreadIoEventLoopGroup(1, new DefaultThreadFactory("ferry-dial", true), LocalIoHandler.newFactory());
  private final Map<ServerAddress, Channel> listeners = new HashMap<>();
  private final Map<ServerAddress, String> lastFailures = new java.util.concurrent.ConcurrentHashMap<>();

  public Dialer(CarrierConnector connector, RouteBook routes, Duration stagger, Duration timeout) {
    this.connector = connector;
    this.routes = routes;
    this.stagger = stagger;
    this.timeout = timeout;
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
  public java.util.Optional<String> lastFailure(ServerAddress server) {
    return java.util.Optional.ofNullable(lastFailures.get(server));
  }

  @Override
  public void close() {
    synchronized (this) {
      listeners.values().forEach(Channel::close);
      listeners.clear();
    }
    localGroup.shutdownGracefully(0, 1, TimeUnit.SECONDS).syncUninterruptibly();
  }

  private static String describe(Throwable error) {
    Throwable t = error;
    while ((t instanceof java.util.concurrent.CompletionException || t instanceof java.io.UncheckedIOException)
        && t.getCause() != null) {
      t = t.getCause();
    }
    String m = t.getMessage();
    if (m == null || m.isBlank()) {
      return t.getClass().getSimpleName();
    }
    // Netty names the address it failed to reach; the clause already says which line it was.
    int colon = m.indexOf(": /");
    return colon > 0 ? m.substring(0, colon) : m.lines().findFirst().orElse(m);
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
    private long wonAt;
    private boolean over;
    private ScheduledFuture<?> staggerTimer;
    private ScheduledFuture<?> deadline;

    Race(ServerAddress server, Channel local) {
      this.server = server;
      this.local = local;
      this.loop = local.eventLoop();
    }

    @Override
    public void channelActive(ChannelHandlerContext ctx) {
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

    /** An attempt failed: start the next now if nothing else is still trying; give up if none is left. */
    private void attemptFailed(Attempt a) {
      a.dead = true;
      routes.failed(server, a.line);
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
      over = true;
      attempts.forEach(Attempt::close);
      release();
      if (deadline != null) {
        deadline.cancel(false);
      }
      if (staggerTimer != null) {
        staggerTimer.cancel(false);
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
          failure = describe(error);
          attemptFailed(this);
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
            winner = this;
            wonAt = System.nanoTime();
            deadline.cancel(false);
            if (staggerTimer != null) {
              staggerTimer.cancel(false);
            }
            release();
            for (Attempt other : attempts) {
              if (other != this) {
                other.close();
              }
            }
            routes.succeeded(server, line);
            lastFailures.remove(server);
          }
          if (winner == this && local.isActive()) {
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
            if (System.nanoTime() - wonAt < YOUNG.toNanos() && !over) {
              routes.failed(server, line);
            }
            local.close();
          } else if (!dead) {
            failure = "closed before the server answered";
            attemptFailed(this);
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
}
