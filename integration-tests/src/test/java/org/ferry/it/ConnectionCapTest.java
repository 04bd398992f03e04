package org.ferry.it;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.grpc.ManagedChannel;
import io.grpc.StatusRuntimeException;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse;
import io.grpc.health.v1.HealthGrpc;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.ferry.it.load.LoadClient;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Issue 19 point 2: a flood of connections meets a cap, and the connections already open stay. */
class ConnectionCapTest {
  @TempDir Path dir;

  private static HealthCheckResponse.ServingStatus check(ManagedChannel ch) {
    return HealthGrpc.newBlockingStub(ch).withDeadlineAfter(10, TimeUnit.SECONDS)
        .check(HealthCheckRequest.getDefaultInstance()).getStatus();
  }

  @Test
  void connectionsBeyondTheCapAreClosedAndOpenOnesKeepWorking() throws Exception {
    try (RunningServer server = RunningServer.configured(dir.resolve("server"), b -> b.maxConnections(3))) {
      ManagedChannel honest = LoadClient.channel(server.address());
      List<Socket> idle = new ArrayList<>();
      try {
        assertEquals(HealthCheckResponse.ServingStatus.SERVING, check(honest));
        // Two idle TCP connections fill the cap.
        for (int i = 0; i < 2; i++) {
          Socket s = new Socket();
          s.connect(new InetSocketAddress(server.address().host(), server.address().port()), 5000);
          idle.add(s);
        }
        ManagedChannel extra = LoadClient.channel(server.address());
        try {
          await().atMost(Duration.ofSeconds(10)).untilAsserted(() ->
              assertThrows(StatusRuntimeException.class, () -> check(extra)));
          // The one that was open before the flood is served all along.
          assertEquals(HealthCheckResponse.ServingStatus.SERVING, check(honest));

          // Once the flood goes, new connections are let in again.
          for (Socket s : idle) {
            s.close();
          }
          idle.clear();
          await().atMost(Duration.ofSeconds(20)).ignoreExceptions().untilAsserted(() -> {
            extra.resetConnectBackoff();
            assertEquals(HealthCheckResponse.ServingStatus.SERVING, check(extra));
          });
        } finally {
          extra.shutdownNow();
        }
      } finally {
        for (Socket s : idle) {
          s.close();
        }
        honest.shutdownNow();
      }
    }
  }
}
