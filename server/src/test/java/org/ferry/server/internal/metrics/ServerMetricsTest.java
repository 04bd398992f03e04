package org.ferry.server.internal.metrics;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.grpc.Status;
import io.prometheus.metrics.model.registry.PrometheusRegistry;
import io.prometheus.metrics.model.snapshots.CounterSnapshot;
import org.ferry.proto.ErrorReasons;
import org.junit.jupiter.api.Test;

class ServerMetricsTest {
  private static double refusals(PrometheusRegistry registry, String reason) {
    return registry.scrape().stream()
        .filter(s -> s.getMetadata().getName().equals("ferry_refusals"))
        .flatMap(s -> ((CounterSnapshot) s).getDataPoints().stream())
        .filter(d -> reason.equals(d.getLabels().get("reason")))
        .mapToDouble(CounterSnapshot.CounterDataPointSnapshot::getValue)
        .sum();
  }

  @Test
  void refusalsAreCountedByTheirReasonWhateverTheStatusCode() {
    PrometheusRegistry registry = new PrometheusRegistry();
    ServerMetrics metrics = ServerMetrics.register(registry);
    metrics.refused(ErrorReasons.withReason(Status.Code.UNAUTHENTICATED, ErrorReasons.CREATION_TOKEN_REQUIRED, "no token"));
    metrics.refused(ErrorReasons.withReason(Status.Code.RESOURCE_EXHAUSTED, ErrorReasons.MAILBOX_FULL, "full"));
    metrics.refused(Status.RESOURCE_EXHAUSTED.withDescription("too many streams").asRuntimeException());
    metrics.refused(Status.NOT_FOUND.asRuntimeException());
    assertEquals(1.0, refusals(registry, ErrorReasons.CREATION_TOKEN_REQUIRED));
    assertEquals(1.0, refusals(registry, ErrorReasons.MAILBOX_FULL));
    assertEquals(1.0, refusals(registry, "STREAM_LIMIT"));
  }

  @Test
  void federationIsCountedPerPeerUnderTheFirstEightCharactersOfItsFingerprint() {
    PrometheusRegistry registry = new PrometheusRegistry();
    ServerMetrics metrics = ServerMetrics.register(registry);
    String peer = "AbCdEfGh" + "x".repeat(35);
    metrics.federationDelivered(peer, 2);
    metrics.federationFailed(peer, ErrorReasons.EXPIRED);
    // Two peers whose fingerprints start alike share one point of the gauge.
    metrics.federationQueue(() -> java.util.Map.of(peer, 3L, "AbCdEfGh" + "y".repeat(35), 4L));
    java.util.Map<String, Double> byMetric = new java.util.HashMap<>();
    registry.scrape().forEach(s -> s.getDataPoints().forEach(d -> {
      if (s.getMetadata().getName().startsWith("ferry_federation")) {
        assertEquals("AbCdEfGh", d.getLabels().get("peer"));
        double v = d instanceof CounterSnapshot.CounterDataPointSnapshot c ? c.getValue()
            : ((io.prometheus.metrics.model.snapshots.GaugeSnapshot.GaugeDataPointSnapshot) d).getValue();
        byMetric.merge(s.getMetadata().getName(), v, Double::sum);
      }
    }));
    assertEquals(2.0, byMetric.get("ferry_federation_delivered"));
    assertEquals(1.0, byMetric.get("ferry_federation_failed"));
    assertEquals(7.0, byMetric.get("ferry_federation_outbound_items"));
  }
}
