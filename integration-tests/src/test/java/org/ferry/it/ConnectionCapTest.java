package org.ferry.it;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.grpc.ManagedChannel;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse;
import io.grpc.health.v1.HealthGrpc;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLParameters;
import javax.net.ssl.SSLSocket;
import org.ferry.it.load.LoadClient;
import org.ferry.proto.ServerAddress;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issue 19 point 2: a flood of connections meets a cap, and no flood of idle connections locks a
 * new client out: at the cap, a new connection takes the place of the one that has done least.
 */
class ConnectionCapTest {
  @TempDir Path dir;

  private static HealthCheckResponse.ServingStatus check(ManagedChannel ch) {
    return HealthGrpc.newBlockingStub(ch).withDeadlineAfter(10, TimeUnit.SECONDS)
        .check(HealthCheckRequest.getDefaultInstance()).getStatus();
  }

  /** A connection that completes TLS (ALPN h2) and the HTTP/2 preface, then says nothing. */
  private static SSLSocket idleHttp2(ServerAddress server) throws Exception {
    SSLContext tls = TrustingTls.context();
    SSLSocket s = (SSLSocket) tls.getSocketFactory().createSocket(server.host(), server.port());
    SSLParameters p = s.getSSLParameters();
    p.setApplicationProtocols(new String[] {"h2"});
    s.setSSLParameters(p);
    s.startHandshake();
    OutputStream out = s.getOutputStream();
    out.write("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".getBytes(StandardCharsets.US_ASCII));
    out.write(new byte[] {0, 0, 0, 4, 0, 0, 0, 0, 0}); // an empty SETTINGS frame
    out.flush();
    return s;
  }

  @Test
  void idleConnectionsHoldingTheCapGiveWayToANewClientAndBusyOnesStay() throws Exception {
    try (RunningServer server = RunningServer.configured(dir.resolve("server"), b -> b.maxConnections(3))) {
      ManagedChannel honest = LoadClient.channel(server.address());
      List<SSLSocket> idle = new ArrayList<>();
      ManagedChannel newcomer = LoadClient.channel(server.address());
      try {
        assertEquals(HealthCheckResponse.ServingStatus.SERVING, check(honest));
        // A receive stream open on the honest connection: it must survive the flood.
        java.util.concurrent.atomic.AtomicReference<io.grpc.Status> ended = new java.util.concurrent.atomic.AtomicReference<>();
        java.util.concurrent.CountDownLatch challenged = new java.util.concurrent.CountDownLatch(1);
        io.grpc.ClientCall<org.ferry.proto.v1.ReceiveRequest, org.ferry.proto.v1.ReceiveResponse> stream =
            honest.newCall(org.ferry.proto.v1.MailboxesGrpc.getReceiveMethod(), io.grpc.CallOptions.DEFAULT);
        stream.start(new io.grpc.ClientCall.Listener<>() {
          @Override
          public void onMessage(org.ferry.proto.v1.ReceiveResponse r) {
            challenged.countDown();
          }

          @Override
          public void onClose(io.grpc.Status status, io.grpc.Metadata trailers) {
            ended.set(status);
          }
        }, new io.grpc.Metadata());
        stream.request(1);
        assertEquals(true, challenged.await(10, TimeUnit.SECONDS), "the stream opened");
        // Two connections that did TLS and the HTTP/2 preface and then nothing fill the cap
        // (the server would keep them for 15 minutes).
        idle.add(idleHttp2(server.address()));
        idle.add(idleHttp2(server.address()));

        // A new client gets in all the same, in place of an idle one, once that has been idle
        // for two seconds.
        await().atMost(Duration.ofSeconds(20)).ignoreExceptions().untilAsserted(() -> {
          newcomer.resetConnectBackoff();
          assertEquals(HealthCheckResponse.ServingStatus.SERVING, check(newcomer));
        });
        // The connection that carried calls before the flood was not the one given up.
        assertEquals(null, ended.get(), "the honest connection's stream was cut");
        stream.cancel("done", null);
      } finally {
        for (SSLSocket s : idle) {
          s.close();
        }
        newcomer.shutdownNow();
        honest.shutdownNow();
      }
    }
  }
}
