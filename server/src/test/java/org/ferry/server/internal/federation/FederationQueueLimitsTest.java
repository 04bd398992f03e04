package org.ferry.server.internal.federation;

import static org.ferry.server.internal.federation.FederationFixture.bytes;
import static org.ferry.server.internal.federation.FederationFixture.forwardTo;
import static org.ferry.server.internal.federation.FederationFixture.routingKey;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.nio.file.Path;
import org.ferry.proto.ErrorReasons;
import org.ferry.proto.v1.RoutingKey;
import org.ferry.server.internal.federation.FederationFixture.Box;
import org.ferry.server.internal.federation.FederationFixture.Node;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The home server's custody is bounded: per destination, and by the storage budget. */
class FederationQueueLimitsTest {
  @TempDir Path tmp;

  @Test
  void fullDestinationQueueRefusesAtForwardAndTheBudgetCountsOutboundBytes() throws Exception {
    try (Node b = new Node(tmp.resolve("b"), builder -> {});
        // 2 items per destination; a budget of 5 KiB: four 1 KiB items and one more for a mailbox.
        Node a = new Node(tmp.resolve("a"), builder -> builder.maxQueuedPerPeer(2).storageBudget(5 * 1024))) {
      Box forwarder = a.createMailbox();
      Box recipient = b.createMailbox();
      RoutingKey key = routingKey(a, b.address(), forwarder, a.clock.instant());
      b.stop();
      a.forwarding().forward(forwardTo(b.address(), key, forwarder, recipient, bytes(16)));
      a.forwarding().forward(forwardTo(b.address(), key, forwarder, recipient, bytes(16)));
      StatusRuntimeException full = assertThrows(StatusRuntimeException.class,
          () -> a.forwarding().forward(forwardTo(b.address(), key, forwarder, recipient, bytes(16))));
      assertEquals(Status.Code.RESOURCE_EXHAUSTED, full.getStatus().getCode());
      assertEquals(ErrorReasons.PEER_QUEUE_FULL, ErrorReasons.of(full).orElseThrow());

      // Other destinations (made-up servers, never reached): their queues are separate, the budget
      // is shared.
      org.ferry.proto.ServerAddress other = new org.ferry.proto.ServerAddress("127.0.0.1", 9, bytes(32));
      a.forwarding().forward(forwardTo(other, key, forwarder, recipient, bytes(16)));
      a.forwarding().forward(forwardTo(other, key, forwarder, recipient, bytes(16)));
      org.ferry.proto.ServerAddress third = new org.ferry.proto.ServerAddress("127.0.0.1", 9, bytes(32));
      StatusRuntimeException budget = assertThrows(StatusRuntimeException.class,
          () -> a.forwarding().forward(forwardTo(third, key, forwarder, recipient, bytes(16)).toBuilder()
              .setBody(com.google.protobuf.ByteString.copyFrom(bytes(4096))).build()));
      assertEquals(Status.Code.RESOURCE_EXHAUSTED, budget.getStatus().getCode());
      assertEquals(ErrorReasons.SERVER_FULL, ErrorReasons.of(budget).orElseThrow());
    }
  }
}
