package org.ferry.server.internal.grpc;

import io.netty.buffer.ByteBuf;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import java.util.Iterator;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.function.LongSupplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The server's listening channel, with a cap on open connections that one client cannot use to
 * lock everyone else out.
 *
 * <p>At the cap, a new connection takes the place of the open connection that has done least:
 * among connections idle for at least {@link #MIN_IDLE_NANOS}, the one that has sent the fewest
 * bytes (then the one idle longest) is closed. A connection that completed TLS and sits idle, or
 * never finished its handshake, goes before one that carried calls. If no connection is idle
 * that long, the new one is closed at once, before any TLS or HTTP/2 state is made for it. Only
 * up to {@link #SAMPLE} open connections are looked at per new one, so a flood costs a bounded
 * scan, never memory.
 */
public final class CappedServerChannel extends NioServerSocketChannel {
  private static final Logger log = LoggerFactory.getLogger(CappedServerChannel.class);

  /** How long a connection must have sent nothing before it may give its place up: 2 s. */
  static final long MIN_IDLE_NANOS = TimeUnit.SECONDS.toNanos(2);
  /** Open connections looked at for one that may give its place up, at most. */
  static final int SAMPLE = 256;
  /** At most one log line per this many nanoseconds while the cap is reached: 60 s. */
  private static final long LOG_EVERY_NANOS = TimeUnit.SECONDS.toNanos(60);

  /** The open connections of one server, shared by its listening channels. */
  public static final class Connections {
    private final Set<Activity> open = ConcurrentHashMap.newKeySet();
    private final LongSupplier nanoTime;
    private volatile long loggedAt;
    private volatile boolean logged;

    public Connections() {
      this(System::nanoTime);
    }

    Connections(LongSupplier nanoTime) {
      this.nanoTime = nanoTime;
    }

    /** Connections open now. */
    public int size() {
      return open.size();
    }
  }

  /** Counts what one connection sends; first in its pipeline, so it sees the raw bytes. */
  private static final class Activity extends ChannelInboundHandlerAdapter {
    final Channel channel;
    final LongSupplier nanoTime;
    volatile long lastRead;
    volatile long bytesRead;

    Activity(Channel channel, LongSupplier nanoTime) {
      this.channel = channel;
      this.nanoTime = nanoTime;
      this.lastRead = nanoTime.getAsLong();
    }

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
      if (msg instanceof ByteBuf b) {
        bytesRead += b.readableBytes();
      }
      lastRead = nanoTime.getAsLong();
      ctx.fireChannelRead(msg);
    }
  }

  private final int maxConnections;
  private final Connections connections;

  /**
   * @param maxConnections connections open at once, at most
   * @param connections the open connections, shared by every listening channel of one server
   * @throws IllegalArgumentException if {@code maxConnections} is not positive
   */
  public CappedServerChannel(int maxConnections, Connections connections) {
    if (maxConnections < 1) {
      throw new IllegalArgumentException("maxConnections must be positive: " + maxConnections);
    }
    this.maxConnections = maxConnections;
    this.connections = connections;
  }

  @Override
  protected int doReadMessages(List<Object> buf) throws Exception {
    int first = buf.size();
    int accepted = super.doReadMessages(buf);
    for (int i = buf.size() - 1; i >= first; i--) {
      Channel child = (Channel) buf.get(i);
      if (connections.open.size() >= maxConnections && !makeRoom()) {
        buf.remove(i);
        accepted--;
        child.unsafe().closeForcibly();
        continue;
      }
      Activity activity = new Activity(child, connections.nanoTime);
      connections.open.add(activity);
      child.pipeline().addFirst("ferry-activity", activity);
      child.closeFuture().addListener(f -> connections.open.remove(activity));
    }
    return accepted;
  }

  /** Closes the open connection that has done least, if one has been idle long enough. */
  private boolean makeRoom() {
    long now = connections.nanoTime.getAsLong();
    Activity victim = null;
    Iterator<Activity> it = connections.open.iterator();
    for (int n = 0; n < SAMPLE && it.hasNext(); n++) {
      Activity a = it.next();
      if (now - a.lastRead < MIN_IDLE_NANOS) {
        continue;
      }
      if (victim == null || a.bytesRead < victim.bytesRead
          || (a.bytesRead == victim.bytesRead && a.lastRead < victim.lastRead)) {
        victim = a;
      }
    }
    if (!connections.logged || now - connections.loggedAt > LOG_EVERY_NANOS) {
      connections.logged = true;
      connections.loggedAt = now;
      log.warn("connection limit ({}) reached: new connections replace idle ones{}", maxConnections,
          victim == null ? "; none is idle now, so new ones are refused" : "");
    }
    if (victim == null) {
      return false;
    }
    // Gone from the set at once, so that the next new connection picks another.
    connections.open.remove(victim);
    victim.channel.close();
    return true;
  }
}
