package org.ferry.it.load;

import com.google.protobuf.ByteString;
import io.grpc.Channel;
import java.security.GeneralSecurityException;
import java.security.SecureRandom;
import java.time.Instant;
import java.util.concurrent.TimeUnit;
import org.ferry.proto.RoutingKeys;
import org.ferry.proto.RoutingSeal;
import org.ferry.proto.ServerAddress;
import org.ferry.proto.v1.ForwardRequest;
import org.ferry.proto.v1.ForwarderAuth;
import org.ferry.proto.v1.ForwardingGrpc;
import org.ferry.proto.v1.GetRoutingKeyRequest;
import org.ferry.proto.v1.RoutingKey;
import org.ferry.proto.v1.Routing;
import org.ferry.proto.v1.SendRouting;

/**
 * Raw protocol access to a home server's Forwarding service, as the SDK uses it, for load, crash
 * and hostile-peer drivers: a forwarder mailbox on the home server, routing keys fetched through
 * it and checked against the destination's pinned fingerprint, and sealed items.
 */
public final class Forwarder {
  private static final SecureRandom RANDOM = new SecureRandom();

  private final LoadClient.Mailbox mailbox;
  private final ForwarderAuth auth;

  private Forwarder(LoadClient.Mailbox mailbox) {
    this.mailbox = mailbox;
    this.auth = ForwarderAuth.newBuilder()
        .setMailboxId(mailbox.id())
        .setSendCapability(ByteString.copyFrom(mailbox.capability()))
        .build();
  }

  /** Makes the forwarder mailbox on the home server behind {@code home}. */
  public static Forwarder create(Channel home) {
    return new Forwarder(LoadClient.createMailbox(home));
  }

  /** The forwarder mailbox, where the home server puts outcomes. */
  public LoadClient.Mailbox mailbox() {
    return mailbox;
  }

  /** What proves to the home server that this forwarder is one of its clients. */
  public ForwarderAuth auth() {
    return auth;
  }

  /** The destination's routing key, fetched through the home server and checked. */
  public RoutingKey routingKey(Channel home, ServerAddress destination) throws GeneralSecurityException {
    return RoutingKeys.verify(
        ForwardingGrpc.newBlockingStub(home).withDeadlineAfter(30, TimeUnit.SECONDS)
            .getRoutingKey(GetRoutingKeyRequest.newBuilder()
                .setForwarder(auth())
                .setServer(destination.toString())
                .build()),
        destination, Instant.now());
  }

  /** A Forward request for {@code to} (a mailbox on {@code destination}), sealed to its key. */
  public ForwardRequest request(
      ServerAddress destination, RoutingKey key, LoadClient.Mailbox to, byte[] itemId, byte[] body) {
    byte[] routing = Routing.newBuilder()
        .setSend(SendRouting.newBuilder()
            .setMailboxId(to.id())
            .setSendCapability(ByteString.copyFrom(to.capability())))
        .build()
        .toByteArray();
    return ForwardRequest.newBuilder()
        .setForwarder(auth())
        .setDestination(destination.toString())
        .setItemId(ByteString.copyFrom(itemId))
        .setRoutingKeyId(key.getKeyId())
        .setSealedRouting(ByteString.copyFrom(RoutingSeal.seal(key.getPublicKey().toByteArray(), key.getKeyId(),
            routing, RoutingSeal.sendBinding(itemId, body), RANDOM)))
        .setBody(ByteString.copyFrom(body))
        .build();
  }

  /** Hands one item to the home server; returns once it has custody. */
  public void forward(Channel home, ForwardRequest request) {
    ForwardingGrpc.newBlockingStub(home).withDeadlineAfter(30, TimeUnit.SECONDS).forward(request);
  }
}
