package org.ferry.server.internal.grpc;

import io.netty.channel.Channel;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The server's listening channel, closing at once every connection accepted beyond a cap on
 * open connections, before any TLS or HTTP/2 state is made for it: a flood of idle connections
 * costs the server a counter, not memory. Connections already open are never touched.
 */
public final class CappedServerChannel extends NioServerSocketChannel {
  private final int maxConnections;
  private final AtomicInteger open;

  /**
   * @param maxConnections connections open at once, at most
   * @param open the count of open connections, shared by every listening channel of one server
   */
  public CappedServerChannel(int maxConnections, AtomicInteger open) {
    if (maxConnections < 1) {
      throw new IllegalArgumentException("maxConnections must be positive: " + maxConnections);
    }
    this.maxConnections = maxConnections;
    this.open = open;
  }

  @Override
  protected int doReadMessages(List<Object> buf) throws Exception {
    int first = buf.size();
    int accepted = super.doReadMessages(buf);
    for (int i = buf.size() - 1; i >= first; i--) {
      Channel child = (Channel) buf.get(i);
      if (open.incrementAndGet() > maxConnections) {
        open.decrementAndGet();
        buf.remove(i);
        accepted--;
        child.unsafe().closeForcibly();
      } else {
        child.closeFuture().addListener(f -> open.decrementAndGet());
      }
    }
    return accepted;
  }
}
