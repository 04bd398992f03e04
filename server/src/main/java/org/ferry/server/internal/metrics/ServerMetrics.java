package org.ferry.server.internal.metrics;

import io.grpc.ForwardingServerCall;
import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.Status;
import io.prometheus.metrics.core.datapoints.CounterDataPoint;
import io.prometheus.metrics.core.metrics.Counter;
import io.prometheus.metrics.core.metrics.GaugeWithCallback;
import io.prometheus.metrics.core.metrics.Histogram;
import io.prometheus.metrics.model.registry.PrometheusRegistry;
import io.prometheus.metrics.model.snapshots.Unit;
import java.util.List;
import java.util.Set;
import java.util.function.LongSupplier;
import org.ferry.proto.ErrorReasons;
import org.ferry.proto.v1.MailboxesGrpc;

/**
 * What a home server counts for its operator's Prometheus. Labels name methods, status codes,
 * reasons, carriers and column families: never a mailbox, a client or anything else per user.
 *
 * <ul>
 *   <li>{@code ferry_grpc_calls_total{method,code}}: finished calls (method as
 *       {@code ferry.v1.Mailboxes/Send})
 *   <li>{@code ferry_envelopes_sent_total}, {@code _delivered_total}, {@code _acknowledged_total},
 *       {@code _expired_total}: envelopes made durable, handed to receive streams, removed on
 *       their owner's acknowledgement, removed unread at expiry
 *   <li>{@code ferry_queue_envelopes}, {@code ferry_queue_bytes}: what waits in all mailboxes
 *   <li>{@code ferry_store_commit_batch_changes}, {@code ferry_store_commit_seconds{synced}}:
 *       group-commit batch sizes and write time (with fsync when {@code synced="true"})
 *   <li>{@code ferry_refusals_total{reason}}: MAILBOX_FULL, SERVER_FULL, RATE_LIMITED,
 *       CREATION_TOKEN_REQUIRED, STREAM_LIMIT (receive streams or their memory)
 *   <li>{@code ferry_rocksdb_*{column_family}}: RocksDB's cheap estimates
 *   <li>Federation, by {@code peer} (the first 8 characters of a peer server's fingerprint):
 *       {@code ferry_federation_outbound_items} (waiting), {@code _delivered_total},
 *       {@code _failed_total{reason}}, {@code _retries_total} (failed calls, each a backoff),
 *       {@code _inbound_stored_total}, {@code _inbound_refused_total{reason}}
 * </ul>
 */
public final class ServerMetrics {
  /** Reasons counted as refusals; anything else RESOURCE_EXHAUSTED is a stream limit. */
  private static final Set<String> REFUSALS = Set.of(ErrorReasons.MAILBOX_FULL, ErrorReasons.SERVER_FULL,
      ErrorReasons.RATE_LIMITED, ErrorReasons.CREATION_TOKEN_REQUIRED);
  /** Sends are counted where the envelope is accepted, so per item of a send stream too. */
  private static final Set<String> SEND_METHODS = Set.of(
      MailboxesGrpc.getSendMethod().getFullMethodName(), MailboxesGrpc.getSendStreamMethod().getFullMethodName());

  private final PrometheusRegistry registry;
  private final Counter calls;
  private final CounterDataPoint sent;
  private final CounterDataPoint delivered;
  private final CounterDataPoint acknowledged;
  private final CounterDataPoint expired;
  private final Counter refusals;
  private final Histogram batchChanges;
  private final Histogram commitSeconds;
  private final Counter fedDelivered;
  private final Counter fedFailed;
  private final Counter fedRetries;
  private final Counter fedStored;
  private final Counter fedRefused;

  private ServerMetrics(PrometheusRegistry registry) {
    this.registry = registry;
    calls = Counter.builder().name("ferry_grpc_calls")
        .help("gRPC calls finished, by method and status code")
        .labelNames("method", "code").register(registry);
    sent = Counter.builder().name("ferry_envelopes_sent")
        .help("Envelopes accepted and durable").register(registry).labelValues();
    delivered = Counter.builder().name("ferry_envelopes_delivered")
        .help("Envelopes handed to their owner's receive streams (redeliveries too)").register(registry).labelValues();
    acknowledged = Counter.builder().name("ferry_envelopes_acknowledged")
        .help("Envelopes removed after their owner acknowledged them").register(registry).labelValues();
    expired = Counter.builder().name("ferry_envelopes_expired")
        .help("Envelopes removed unread when their time ran out").register(registry).labelValues();
    refusals = Counter.builder().name("ferry_refusals")
        .help("Requests refused by a quota or limit, by reason")
        .labelNames("reason").register(registry);
    batchChanges = Histogram.builder().name("ferry_store_commit_batch_changes")
        .help("Changes written together by one group commit")
        .classicOnly().classicUpperBounds(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
        .register(registry);
    commitSeconds = Histogram.builder().name("ferry_store_commit_seconds")
        .help("Time to write one group-commit batch, with its fsync when synced")
        .unit(Unit.SECONDS)
        .classicOnly()
        .classicUpperBounds(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1)
        .labelNames("synced").register(registry);
    fedDelivered = Counter.builder().name("ferry_federation_delivered")
        .help("Items a peer server accepted from this one, by peer").labelNames("peer").register(registry);
    fedFailed = Counter.builder().name("ferry_federation_failed")
        .help("Items given up (refused by the peer, or expired), by peer and reason")
        .labelNames("peer", "reason").register(registry);
    fedRetries = Counter.builder().name("ferry_federation_retries")
        .help("Failed deliveries to a peer, each followed by a backoff, by peer")
        .labelNames("peer").register(registry);
    fedStored = Counter.builder().name("ferry_federation_inbound_stored")
        .help("Items peers delivered that were stored here, by peer").labelNames("peer").register(registry);
    fedRefused = Counter.builder().name("ferry_federation_inbound_refused")
        .help("Items peers delivered that were refused here, by peer and reason")
        .labelNames("peer", "reason").register(registry);
  }

  /** A peer as a metric label: the first 8 characters of its fingerprint's text. */
  public static String peerLabel(String fingerprintText) {
    return fingerprintText.substring(0, Math.min(8, fingerprintText.length()));
  }

  public void federationDelivered(String peer, int items) {
    fedDelivered.labelValues(peerLabel(peer)).inc(items);
  }

  public void federationFailed(String peer, String reason) {
    fedFailed.labelValues(peerLabel(peer), reason).inc();
  }

  public void federationRetry(String peer) {
    fedRetries.labelValues(peerLabel(peer)).inc();
  }

  public void federationStored(String peer) {
    fedStored.labelValues(peerLabel(peer)).inc();
  }

  public void federationRefused(String peer, String reason) {
    fedRefused.labelValues(peerLabel(peer), reason).inc();
  }

  /** Gauge of items waiting per destination, read when scraped. */
  public void federationQueue(java.util.function.Supplier<java.util.Map<String, Long>> waiting) {
    GaugeWithCallback.builder().name("ferry_federation_outbound_items")
        .help("Items waiting for delivery to a peer server, by peer")
        .labelNames("peer")
        .callback(cb -> {
          // Two peers may share a label: one point each label.
          java.util.Map<String, Long> byLabel = new java.util.TreeMap<>();
          waiting.get().forEach((peer, n) -> byLabel.merge(peerLabel(peer), n, Long::sum));
          byLabel.forEach((label, n) -> cb.call(n, label));
        }).register(registry);
  }

  /** Metrics in {@code registry}, which a metrics listener serves. */
  public static ServerMetrics register(PrometheusRegistry registry) {
    return new ServerMetrics(registry);
  }

  /** Metrics that nobody reads (no listener configured). */
  public static ServerMetrics unread() {
    return new ServerMetrics(new PrometheusRegistry());
  }

  public void sent() {
    sent.inc();
  }

  public void delivered() {
    delivered.inc();
  }

  public void acknowledged(int envelopes) {
    acknowledged.inc(envelopes);
  }

  public void expired(int envelopes) {
    expired.inc(envelopes);
  }

  /** Counts a failed send or call if a quota or limit refused it. */
  public void refused(Throwable failure) {
    // By reason, whatever the code (a missing creation token is UNAUTHENTICATED).
    String reason = ErrorReasons.of(failure).orElse("");
    if (REFUSALS.contains(reason)) {
      refusals.labelValues(reason).inc();
    } else if (Status.fromThrowable(failure).getCode() == Status.Code.RESOURCE_EXHAUSTED) {
      refusals.labelValues("STREAM_LIMIT").inc();
    }
  }

  /** One group-commit batch of {@code changes}, written in {@code nanos}. */
  public void committed(int changes, boolean synced, long nanos) {
    batchChanges.observe(changes);
    commitSeconds.labelValues(synced ? "true" : "false").observe(nanos / 1e9);
  }

  /** Gauges of what waits in the queue, read when scraped. */
  public void queue(LongSupplier envelopes, LongSupplier bytes) {
    GaugeWithCallback.builder().name("ferry_queue_envelopes")
        .help("Envelopes waiting in all mailboxes")
        .callback(cb -> cb.call(envelopes.getAsLong())).register(registry);
    GaugeWithCallback.builder().name("ferry_queue_bytes").unit(Unit.BYTES)
        .help("Envelope body bytes waiting in all mailboxes")
        .callback(cb -> cb.call(bytes.getAsLong())).register(registry);
  }

  /**
   * Gauges of RocksDB properties, read when scraped: {@code property(columnFamily, name)} for
   * each of {@code columnFamilies}; -1 leaves a point out.
   */
  public void rocksDb(List<String> columnFamilies, RocksDbProperty property) {
    record Gauge(String metric, String rocksName, Unit unit, String help) {}
    for (Gauge g : List.of(
        new Gauge("ferry_rocksdb_estimate_live_data", "rocksdb.estimate-live-data-size", Unit.BYTES,
            "RocksDB's estimate of live data, by column family"),
        new Gauge("ferry_rocksdb_estimate_keys", "rocksdb.estimate-num-keys", null,
            "RocksDB's estimate of keys, by column family"),
        new Gauge("ferry_rocksdb_sst_files", "rocksdb.total-sst-files-size", Unit.BYTES,
            "Size of RocksDB's table files, by column family"),
        new Gauge("ferry_rocksdb_memtables", "rocksdb.cur-size-all-mem-tables", Unit.BYTES,
            "Size of RocksDB's memtables, by column family"))) {
      GaugeWithCallback.Builder b = GaugeWithCallback.builder().name(g.metric()).help(g.help())
          .labelNames("column_family")
          .callback(cb -> {
            for (String cf : columnFamilies) {
              long v = property.get(cf, g.rocksName());
              if (v >= 0) {
                cb.call(v, cf);
              }
            }
          });
      if (g.unit() != null) {
        b.unit(g.unit());
      }
      b.register(registry);
    }
  }

  /** Reads a RocksDB integer property of a column family; -1 if it cannot. */
  @FunctionalInterface
  public interface RocksDbProperty {
    long get(String columnFamily, String property);
  }

  /**
   * Counts every finished call by method and status code, and refusals of calls other than
   * sends (which {@link #refused} counts per envelope).
   */
  public ServerInterceptor interceptor() {
    return new ServerInterceptor() {
      @Override
      public <Q, R> ServerCall.Listener<Q> interceptCall(
          ServerCall<Q, R> call, Metadata headers, ServerCallHandler<Q, R> next) {
        String method = call.getMethodDescriptor().getFullMethodName();
        boolean countRefusals = !SEND_METHODS.contains(method);
        return next.startCall(new ForwardingServerCall.SimpleForwardingServerCall<>(call) {
          @Override
          public void close(Status status, Metadata trailers) {
            calls.labelValues(method, status.getCode().name()).inc();
            if (countRefusals && !status.isOk()) {
              refused(status.asRuntimeException(trailers));
            }
            super.close(status, trailers);
          }
        }, headers);
      }
    };
  }
}
