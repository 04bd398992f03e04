package org.ferry.server.internal.admin;

import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.function.LongSupplier;
import java.util.function.Supplier;
import io.prometheus.metrics.model.registry.PrometheusRegistry;
import io.prometheus.metrics.model.snapshots.DataPointSnapshot;
import io.prometheus.metrics.model.snapshots.GaugeSnapshot;
import io.prometheus.metrics.model.snapshots.MetricSnapshot;
import java.util.Set;
import org.ferry.proto.BridgeLine;
import org.ferry.relay.Carrier;
import org.ferry.server.internal.store.DiskSpace;

/**
 * What {@code ferry server status} shows, read from the counters the server keeps anyway (the
 * store's queue counters, the connection cap's open set, the receive streams' reservations, the
 * carrier metrics), as a JSON-ready map. Bridges are probed at once, each within
 * {@link #PROBE_TIMEOUT}.
 */
public final class StatusReport {
  /** Longest wait for one bridge's self-probe: 3 s. */
  static final Duration PROBE_TIMEOUT = Duration.ofSeconds(3);

  /** One of the server's own bridge lines and the port to probe for it. */
  public record Bridge(BridgeLine line, InetSocketAddress port) {}

  private final String address;
  private final LongSupplier nanoTime;
  private final long startedNanos;
  private final LongSupplier connections;
  private final Supplier<Map<String, Long>> carrierConnections;
  private final LongSupplier receiveStreams;
  private final LongSupplier queuedEnvelopes;
  private final LongSupplier queuedBytes;
  private final long storageBudget;
  private final LongSupplier storageUsed;
  private final DiskSpace disk;
  private final List<Bridge> bridges;
  private final Supplier<Map<String, Object>> federation;

  /**
   * @param connections client connections open on the gRPC port (carriers' upstream connections included)
   * @param carrierConnections carrier sessions open now, by carrier kind
   * @param storageUsed bytes held against the storage budget (queued envelopes and items for other servers)
   * @param federation the federation's state for the report ({@code Federation.status})
   */

  public StatusReport(String address, LongSupplier nanoTime, LongSupplier connections,
      Supplier<Map<String, Long>> carrierConnections, LongSupplier receiveStreams, LongSupplier queuedEnvelopes,
      LongSupplier queuedBytes, long storageBudget, LongSupplier storageUsed, DiskSpace disk, List<Bridge> bridges,
      Supplier<Map<String, Object>> federation) {
    this.storageUsed = storageUsed;
    this.federation = federation;
    this.address = address;
    this.nanoTime = nanoTime;
    this.startedNanos = nanoTime.getAsLong();
    this.connections = connections;
    this.carrierConnections = carrierConnections;
    this.receiveStreams = receiveStreams;
    this.queuedEnvelopes = queuedEnvelopes;
    this.queuedBytes = queuedBytes;
    this.storageBudget = storageBudget;
    this.disk = disk;
    this.bridges = List.copyOf(bridges);
  }

  /**
   * Carrier sessions open now by kind, for {@code kinds}, as the carrier metrics in
   * {@code registry} count them ({@code ferry_carrier_connections_open}).
   */
  public static Map<String, Long> carrierSessions(PrometheusRegistry registry, Set<Carrier> kinds) {
    Map<String, Long> open = new LinkedHashMap<>();
    for (Carrier kind : Carrier.values()) {
      if (kinds.contains(kind)) {
        open.put(kind.name().toLowerCase(java.util.Locale.ROOT), 0L);
      }
    }
    for (MetricSnapshot metric : registry.scrape(name -> name.equals("ferry_carrier_connections_open"))) {
      for (DataPointSnapshot point : metric.getDataPoints()) {
        String carrier = point.getLabels().get("carrier");
        if (point instanceof GaugeSnapshot.GaugeDataPointSnapshot g && open.containsKey(carrier)) {
          open.put(carrier, (long) g.getValue());
        }
      }
    }
    return open;
  }

  /** The report now, as {@code ferry server status --json} prints it. */
  public Map<String, Object> snapshot() {
    List<CompletableFuture<BridgeProbe.Outcome>> probes = new ArrayList<>();
    for (Bridge b : bridges) {
      probes.add(CompletableFuture.supplyAsync(() -> b.line().kind() == BridgeLine.Kind.OBFS4
          ? BridgeProbe.tcp(b.port(), PROBE_TIMEOUT) : BridgeProbe.web(b.port(), PROBE_TIMEOUT)));
    }
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("address", address);
    m.put("uptime_seconds", Duration.ofNanos(nanoTime.getAsLong() - startedNanos).toSeconds());
    Map<String, Long> byCarrier = carrierConnections.get();
    long viaCarriers = byCarrier.values().stream().mapToLong(Long::longValue).sum();
    Map<String, Object> conns = new LinkedHashMap<>();
    // Each carrier session is also one connection to the gRPC port, from the carrier.
    conns.put("direct", Math.max(0, connections.getAsLong() - viaCarriers));
    conns.putAll(byCarrier);
    m.put("connections", conns);
    m.put("receive_streams", receiveStreams.getAsLong());
    long bytes = queuedBytes.getAsLong();
    m.put("queue", Map.of("envelopes", queuedEnvelopes.getAsLong(), "bytes", bytes));
    long used = storageUsed.getAsLong();
    Map<String, Object> d = new LinkedHashMap<>();
    d.put("storage_budget_bytes", storageBudget);
    d.put("storage_budget_used_bytes", used);
    d.put("usable_bytes", disk.usableBytes());
    d.put("reserve_bytes", disk.reserveBytes());
    d.put("accepting", disk.hadRoom() && used < storageBudget);
    m.put("disk", d);
    m.put("federation", federation.get());
    List<Object> bs = new ArrayList<>();
    for (int i = 0; i < bridges.size(); i++) {
      BridgeProbe.Outcome o = probes.get(i).join();
      Map<String, Object> b = new LinkedHashMap<>();
      b.put("carrier", bridges.get(i).line().kind().word());
      b.put("line", bridges.get(i).line().toString());
      b.put("answers", o.answers());
      b.put("millis", o.millis());
      b.put("detail", o.detail());
      bs.add(b);
    }
    m.put("bridges", bs);
    return m;
  }
}
