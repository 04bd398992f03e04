package org.ferry.it;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.InetSocketAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.ferry.it.censor.Censor;
import org.ferry.proto.ServerAddress;
import org.ferry.sdk.FerryClient;
import org.ferry.sdk.FerryException;
import org.ferry.sdk.ReceivedMessage;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** `ferry server --metrics-listen` and `ferry relay --metrics-listen`, scraped as Prometheus would. */
class MetricsTest {
  private static final Pattern METRICS_URL = Pattern.compile("metrics: (http://\\S+)");
  private static final Duration BOUND = Duration.ofSeconds(30);

  @TempDir Path dir;

  @Test
  void serverCountersMoveWithTrafficAndNoLabelNamesAUserOrClient() throws Exception {
    Path data = dir.resolve("server");
    Set<Integer> clientPorts = new HashSet<>();
    List<Map<String, PrometheusText.Family>> scrapes = new ArrayList<>();
    int serverPort;
    try (FerryProcess server = FerryProcess.server(dir.resolve("run"), "--data", data.toString(),
            "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--mailbox-max-envelopes", "6",
            "--carriers", "ws,poll");
        FerryClient alice = TestClients.open(dir, "alice");
        FerryClient bob = TestClients.open(dir, "bob")) {
      URI metrics = metricsUrl(server.out());
      serverPort = server.address().port();
      Map<String, PrometheusText.Family> before = scrape(metrics);
      scrapes.add(before);
      assertEquals(0.0, value(before, "ferry_envelopes_sent_total", Map.of()));
      assertNotNull(before.get("jvm_memory_used_bytes"), "JVM metrics");
      assertNotNull(before.get("ferry_rocksdb_estimate_live_data_bytes"), "RocksDB metrics");
      assertEquals(0.0, value(before, "ferry_carrier_connections_total", Map.of("carrier", "ws")), "carriers, by kind");

      alice.initialize(server.address());
      bob.initialize(server.address());
      bob.acceptInvitation(alice.createInvitation("bob").uri(), "alice");
      for (int i = 0; i < 5; i++) {
        bob.send("alice", "message " + i);
      }
      clientPorts.addAll(ServerTraces.clientPorts(serverPort));
      List<ReceivedMessage> got = new ArrayList<>();
      await().atMost(BOUND).until(() -> {
        alice.receive(Duration.ofMillis(200), got::add);
        return got.size() >= 5;
      });
      clientPorts.addAll(ServerTraces.clientPorts(serverPort));
      // The mailbox holds 6: fill it until the server refuses.
      FerryException full = assertThrows(FerryException.class, () -> {
        for (int i = 0; i < 10; i++) {
          bob.send("alice", "filler " + i);
        }
      });
      assertEquals(FerryException.Reason.RECIPIENT_FULL, full.reason());

      await().atMost(BOUND).untilAsserted(() -> {
        Map<String, PrometheusText.Family> after = scrape(metrics);
        scrapes.add(after);
        assertTrue(value(after, "ferry_envelopes_sent_total", Map.of()) >= 5 + 6, "sent");
        assertTrue(value(after, "ferry_envelopes_delivered_total", Map.of()) >= 5, "delivered");
        assertTrue(value(after, "ferry_envelopes_acknowledged_total", Map.of()) >= 5, "acknowledged");
        assertEquals(1.0, value(after, "ferry_refusals_total", Map.of("reason", "MAILBOX_FULL")), "refusals");
        assertTrue(value(after, "ferry_queue_envelopes", Map.of()) >= 6, "queue depth");
        assertTrue(value(after, "ferry_queue_bytes", Map.of()) >= 6 * 1024, "queue bytes");
        assertEquals(2.0, value(after, "ferry_grpc_calls_total",
            Map.of("method", "ferry.v1.Mailboxes/CreateMailbox", "code", "OK")) , "calls by method and code");
        assertTrue(sum(after, "ferry_grpc_calls_total", "code", "RESOURCE_EXHAUSTED") >= 1, "refused calls");
        assertTrue(value(after, "ferry_store_commit_batch_changes_count", Map.of()) >= 11, "group commits");
        assertTrue(value(after, "ferry_store_commit_seconds_count", Map.of("synced", "true")) >= 1, "fsyncs");
      });
    }
    // Labels: nothing that names a mailbox or a client.
    List<String> forbidden = new ArrayList<>(ServerTraces.mailboxIdTexts(data.resolve("store")));
    assertFalse(forbidden.isEmpty());
    for (int port : clientPorts) {
      forbidden.add(Integer.toString(port));
    }
    forbidden.add("127.0.0.1");
    for (Map<String, PrometheusText.Family> scrape : scrapes) {
      for (PrometheusText.Family family : scrape.values()) {
        for (PrometheusText.Sample s : family.samples()) {
          for (String label : s.labels().values()) {
            for (String f : forbidden) {
              assertFalse(label.contains(f), s.name() + s.labels() + " shows '" + f + "'");
            }
          }
        }
      }
    }
  }

  @Test
  void relayCountsCarrierSessionsAndBytesByKindOnly() throws Exception {
    int web = ExternalProcess.freePort();
    try (FerryProcess server = FerryProcess.server(dir.resolve("srun"), "--data", dir.resolve("server").toString(),
            "--listen", "127.0.0.1:0");
        FerryProcess relay = FerryProcess.relay(dir.resolve("rrun"), "--data", dir.resolve("relay").toString(),
            "--listen", "127.0.0.1:" + web, "--upstream", "127.0.0.1:" + server.address().port(),
            "--carriers", "ws,poll", "--metrics-listen", "127.0.0.1:0");
        Censor direct = Censor.start(new InetSocketAddress("127.0.0.1", server.address().port()))
            .block(Censor.Rule.BLOCK_PORT);
        FerryClient alice = TestClients.open(dir, "alice");
        FerryClient bob = TestClients.open(dir, "bob")) {
      URI metrics = metricsUrl(relay.out());
      Map<String, PrometheusText.Family> before = scrape(metrics);
      for (String carrier : List.of("ws", "poll")) {
        assertEquals(0.0, value(before, "ferry_carrier_connections_total", Map.of("carrier", carrier)));
        assertEquals(0.0, value(before, "ferry_carrier_connections_open", Map.of("carrier", carrier)));
      }
      assertNotNull(before.get("jvm_threads_current"), "JVM metrics");

      String ws = relay.out().lines().filter(l -> l.startsWith("bridge: ws ")).findFirst().orElseThrow()
          .substring("bridge: ".length());
      // Alice reaches her server only through the relay's WebSocket line; Bob directly.
      alice.initialize(new ServerAddress("127.0.0.1", direct.port(), server.address().fingerprint()), "", List.of(ws));
      bob.initialize(server.address());
      bob.acceptInvitation(alice.createInvitation("bob").uri(), "alice");
      bob.send("alice", "over the bridge");
      List<ReceivedMessage> got = new ArrayList<>();
      await().atMost(BOUND).until(() -> {
        alice.receive(Duration.ofMillis(200), got::add);
        return !got.isEmpty();
      });
      Set<Integer> clientPorts = ServerTraces.clientPorts(web);

      Map<String, PrometheusText.Family> after = scrape(metrics);
      assertTrue(value(after, "ferry_carrier_connections_total", Map.of("carrier", "ws")) >= 1, "ws sessions");
      assertTrue(value(after, "ferry_carrier_bytes_total", Map.of("carrier", "ws", "direction", "to_server")) > 0);
      assertTrue(value(after, "ferry_carrier_bytes_total", Map.of("carrier", "ws", "direction", "to_client")) > 0);
      assertEquals(0.0, value(after, "ferry_carrier_connections_total", Map.of("carrier", "poll")));
      for (PrometheusText.Family family : after.values()) {
        for (PrometheusText.Sample s : family.samples()) {
          for (String label : s.labels().values()) {
            assertFalse(label.contains("127.0.0.1"), s.name() + s.labels());
            for (int port : clientPorts) {
              assertFalse(label.contains(Integer.toString(port)), s.name() + s.labels());
            }
          }
        }
      }
    }
  }

  private static URI metricsUrl(String stdout) {
    Matcher m = METRICS_URL.matcher(stdout);
    assertTrue(m.find(), "no metrics line in:\n" + stdout);
    return URI.create(m.group(1));
  }

  private static Map<String, PrometheusText.Family> scrape(URI uri) throws Exception {
    HttpResponse<String> r = HttpClient.newHttpClient().send(
        HttpRequest.newBuilder(uri).timeout(Duration.ofSeconds(10)).build(), HttpResponse.BodyHandlers.ofString());
    assertEquals(200, r.statusCode());
    assertTrue(r.headers().firstValue("content-type").orElse("").startsWith("text/plain; version=0.0.4"),
        r.headers().toString());
    return PrometheusText.parse(r.body());
  }

  /** The value of the one sample named {@code sample} with exactly {@code labels}. */
  private static double value(Map<String, PrometheusText.Family> m, String sample, Map<String, String> labels) {
    return m.values().stream().flatMap(f -> f.samples().stream())
        .filter(s -> s.name().equals(sample) && s.labels().equals(labels))
        .mapToDouble(PrometheusText.Sample::value)
        .reduce((a, b) -> {
          throw new AssertionError("two samples " + sample + labels);
        })
        .orElseThrow(() -> new AssertionError("no sample " + sample + labels));
  }

  private static double sum(Map<String, PrometheusText.Family> m, String sample, String label, String value) {
    return m.values().stream().flatMap(f -> f.samples().stream())
        .filter(s -> s.name().equals(sample) && value.equals(s.labels().get(label)))
        .mapToDouble(PrometheusText.Sample::value).sum();
  }
}
