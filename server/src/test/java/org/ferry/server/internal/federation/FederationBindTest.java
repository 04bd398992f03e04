package org.ferry.server.internal.federation;

import static org.ferry.server.internal.federation.FederationFixture.bytes;
import static org.ferry.server.internal.federation.FederationFixture.forwardTo;
import static org.ferry.server.internal.federation.FederationFixture.routingKey;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import io.grpc.Grpc;
import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import org.ferry.proto.v1.FederationGrpc;
import org.ferry.proto.v1.RoutingKey;
import org.ferry.server.internal.federation.FederationFixture.Box;
import org.ferry.server.internal.federation.FederationFixture.Node;
import org.ferry.server.internal.federation.FederationFixture.Outcomes;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Outgoing federation leaves from the address, or through the proxy, the operator gave. */
class FederationBindTest {
  @TempDir Path tmp;

  @Test
  void federationConnectionsLeaveFromTheBindAddress() throws Exception {
    Set<String> federationPeers = ConcurrentHashMap.newKeySet();
    ServerInterceptor recorder = new ServerInterceptor() {
      @Override
      public <Q, R> ServerCall.Listener<Q> interceptCall(ServerCall<Q, R> call, Metadata headers,
          ServerCallHandler<Q, R> next) {
        if (call.getMethodDescriptor().getServiceName().equals(FederationGrpc.SERVICE_NAME)) {
          InetSocketAddress remote = (InetSocketAddress) call.getAttributes().get(Grpc.TRANSPORT_ATTR_REMOTE_ADDR);
          federationPeers.add(remote.getAddress().getHostAddress());
        }
        return next.startCall(call, headers);
      }
    };
    InetAddress source = InetAddress.getByName("127.0.0.2");
    try (Node b = new Node(tmp.resolve("b"), builder -> builder.interceptor(recorder));
        Node a = new Node(tmp.resolve("a"), builder -> builder.federationBind(source))) {
      Box forwarder = a.createMailbox();
      Box recipient = b.createMailbox();
      RoutingKey key = routingKey(a, b.address(), forwarder, a.clock.instant());
      try (Outcomes outcomes = new Outcomes(a, forwarder)) {
        a.forwarding().forward(forwardTo(b.address(), key, forwarder, recipient, bytes(16)));
        outcomes.waitFor(1);
      }
    }
    assertFalse(federationPeers.isEmpty());
    assertEquals(Set.of("127.0.0.2"), federationPeers);
  }

  @Test
  void federationGoesThroughTheSocks5ProxyWhenOneIsSet() throws Exception {
    try (Socks5Proxy proxy = new Socks5Proxy();
        Node b = new Node(tmp.resolve("b"), builder -> {});
        Node a = new Node(tmp.resolve("a"), builder -> builder.federationProxy(
            new InetSocketAddress(InetAddress.getLoopbackAddress(), proxy.port())))) {
      Box forwarder = a.createMailbox();
      Box recipient = b.createMailbox();
      RoutingKey key = routingKey(a, b.address(), forwarder, a.clock.instant());
      try (Outcomes outcomes = new Outcomes(a, forwarder)) {
        a.forwarding().forward(forwardTo(b.address(), key, forwarder, recipient, bytes(16)));
        assertEquals(org.ferry.proto.v1.ForwardOutcome.Result.DELIVERED, outcomes.waitFor(1).get(0).getResult());
      }
      assertFalse(proxy.targets.isEmpty());
      assertEquals(Set.of(b.port), Set.copyOf(proxy.targets));
    }
  }
}
