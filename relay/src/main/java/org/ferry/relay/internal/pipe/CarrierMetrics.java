package org.ferry.relay.internal.pipe;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufHolder;
import io.netty.channel.ChannelDuplexHandler;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelPromise;
import io.prometheus.metrics.core.datapoints.CounterDataPoint;
import io.prometheus.metrics.core.datapoints.GaugeDataPoint;
import io.prometheus.metrics.core.metrics.Counter;
import io.prometheus.metrics.core.metrics.Gauge;
import io.prometheus.metrics.model.registry.PrometheusRegistry;

/**
 * Carrier sessions, counted where they meet the server: each session (ws, poll, obfs4, or a
 * connection handed to the fallback web server) opens one upstream connection, and its bytes
 * are counted there, by carrier kind only. Nothing about a client (address, path, timing of
 * one session) is kept.
 *
 * <ul>
 *   <li>{@code ferry_carrier_connections_total{carrier}}: sessions opened
 *   <li>{@code ferry_carrier_connections_open{carrier}}: sessions open now
 *   <li>{@code ferry_carrier_bytes_total{carrier,direction}}: bytes {@code to_server} and
 *       {@code to_client} (TLS records between client and server, as they pass)
 * </ul>
 */
public final class CarrierMetrics {
  private final Counter opened;
  private final Gauge open;
  private final Counter bytes;

  private CarrierMetrics(PrometheusRegistry registry) {
    opened = Counter.builder().name("ferry_carrier_connections")
        .help("Carrier sessions opened, by carrier (ws, poll, obfs4, fallback)")
        .labelNames("carrier").register(registry);
    open = Gauge.builder().name("ferry_carrier_connections_open")
        .help("Carrier sessions open now, by carrier")
        .labelNames("carrier").register(registry);
    bytes = Counter.builder().name("ferry_carrier_bytes")
        .help("Bytes passed between carriers and the server, by carrier and direction")
        .unit(io.prometheus.metrics.model.snapshots.Unit.BYTES)
        .labelNames("carrier", "direction").register(registry);
  }

  /**
   * Registers the carrier metrics in {@code registry}, with a zero for each of {@code carriers}
   * (so that dashboards show them before the first session).
   */
  public static CarrierMetrics register(PrometheusRegistry registry, Iterable<String> carriers) {
    CarrierMetrics m = new CarrierMetrics(registry);
    for (String carrier : carriers) {
      m.opened.labelValues(carrier);
      m.open.labelValues(carrier);
      m.bytes.labelValues(carrier, "to_server");
      m.bytes.labelValues(carrier, "to_client");
    }
    return m;
  }

  /** Metrics that nobody reads (no listener configured). */
  public static CarrierMetrics unread() {
    return new CarrierMetrics(new PrometheusRegistry());
  }

  /** A handler for one upstream connection of {@code carrier}'s; first in its pipeline. */
  ChannelHandler meter(String carrier) {
    return new Meter(opened.labelValues(carrier), open.labelValues(carrier),
        bytes.labelValues(carrier, "to_server"), bytes.labelValues(carrier, "to_client"));
  }

  private static final class Meter extends ChannelDuplexHandler {
    private final CounterDataPoint opened;
    private final GaugeDataPoint open;
    private final CounterDataPoint toServer;
    private final CounterDataPoint toClient;
    private boolean active;

    Meter(CounterDataPoint opened, GaugeDataPoint open, CounterDataPoint toServer, CounterDataPoint toClient) {
      this.opened = opened;
      this.open = open;
      this.toServer = toServer;
      this.toClient = toClient;
    }

    @Override
    public void channelActive(ChannelHandlerContext ctx) throws Exception {
      active = true;
      opened.inc();
      open.inc();
      super.channelActive(ctx);
    }

    @Override
    public void channelInactive(ChannelHandlerContext ctx) throws Exception {
      if (active) {
        active = false;
        open.dec();
      }
      super.channelInactive(ctx);
    }

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) throws Exception {
      toClient.inc(size(msg));
      super.channelRead(ctx, msg);
    }

    @Override
    public void write(ChannelHandlerContext ctx, Object msg, ChannelPromise promise) throws Exception {
      toServer.inc(size(msg));
      super.write(ctx, msg, promise);
    }

    private static long size(Object msg) {
      if (msg instanceof ByteBuf b) {
        return b.readableBytes();
      }
      return msg instanceof ByteBufHolder h ? h.content().readableBytes() : 0;
    }
  }
}
