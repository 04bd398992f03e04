package org.ferry.relay.internal.pipe;

import io.netty.channel.ChannelFuture;
import io.netty.channel.EventLoop;
import java.net.InetSocketAddress;
import java.util.concurrent.atomic.AtomicBoolean;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The real web server behind a relay's web port (an nginx on loopback, say) that answers every
 * connection which is not a carrier's. The log says once when it stops answering and once when it
 * answers again; never anything about the connections themselves.
 */
public final class Fallback {
  private static final Logger log = LoggerFactory.getLogger(Fallback.class);

  private final Upstream site;
  private final AtomicBoolean down = new AtomicBoolean();

  public Fallback(InetSocketAddress address, CarrierMetrics metrics) {
    this.site = new Upstream(address, metrics);
  }

  /** Connects; the channel comes back with auto-read off and an empty pipeline. */
  public ChannelFuture connect(EventLoop loop) {
    ChannelFuture connecting = site.connect(loop, "fallback");
    connecting.addListener(f -> {
      if (f.isSuccess()) {
        if (down.compareAndSet(true, false)) {
          log.info("fallback web server {} answers again", site.address());
        }
      } else if (down.compareAndSet(false, true)) {
        log.warn("fallback web server {} does not answer ({}); connections that are not carriers "
            + "are closed until it does", site.address(), f.cause().toString());
      }
    });
    return connecting;
  }
}
