package org.ferry.sdk.internal.net;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.Status;
import java.nio.channels.ClosedChannelException;
import org.junit.jupiter.api.Test;

class ServerConnectionsTest {
  @Test
  void aCarrierThatDiedUnderACallCountsAsALostConnection() {
    assertTrue(ServerConnections.isConnectionLost(Status.UNAVAILABLE.asRuntimeException()));
    // grpc-java's report of a write on a connection that closed under it.
    assertTrue(ServerConnections.isConnectionLost(
        Status.UNKNOWN.withDescription("channel closed").withCause(new ClosedChannelException()).asRuntimeException()));
  }

  @Test
  void otherFailuresAreFinal() {
    assertFalse(ServerConnections.isConnectionLost(Status.UNKNOWN.withDescription("boom").asRuntimeException()));
    assertFalse(ServerConnections.isConnectionLost(Status.INVALID_ARGUMENT.asRuntimeException()));
    assertFalse(ServerConnections.isConnectionLost(
        Status.PERMISSION_DENIED.withCause(new ClosedChannelException()).asRuntimeException()));
  }
}
