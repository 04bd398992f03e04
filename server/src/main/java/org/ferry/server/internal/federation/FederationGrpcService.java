package org.ferry.server.internal.federation;

import com.google.protobuf.ByteString;
import io.grpc.stub.StreamObserver;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import org.ferry.proto.v1.DeliverRequest;
import org.ferry.proto.v1.DeliverResponse;
import org.ferry.proto.v1.FederatedItem;
import org.ferry.proto.v1.FederatedTakeRequest;
import org.ferry.proto.v1.FederationGrpc;
import org.ferry.proto.v1.FederationRoutingKeyRequest;
import org.ferry.proto.v1.ItemResult;
import org.ferry.proto.v1.SignedRoutingKey;
import org.ferry.proto.v1.TakeInvitationResponse;
import org.ferry.server.internal.grpc.GrpcErrors;

/**
 * The Federation service: what peer servers call, over mutual TLS ({@link PeerAuthInterceptor}
 * puts the caller's fingerprint in the context). The call as a whole is refused only for the
 * peer (policy, budget, malformed batch); each item gets its own result.
 */
final class FederationGrpcService extends FederationGrpc.FederationImplBase {
  /** Most items one Deliver may carry; more refuses the call (INVALID_ARGUMENT). */
  static final int MAX_BATCH_ITEMS = 256;

  private final Federation federation;

  FederationGrpcService(Federation federation) {
    this.federation = federation;
  }

  @Override
  public void getRoutingKey(FederationRoutingKeyRequest request, StreamObserver<SignedRoutingKey> response) {
    federation.policy().admit(PeerAuthInterceptor.PEER.get(), 1, 0);
    response.onNext(federation.keyring().signed());
    response.onCompleted();
  }

  @Override
  public void deliver(DeliverRequest request, StreamObserver<DeliverResponse> response) {
    byte[] peer = PeerAuthInterceptor.PEER.get();
    int n = request.getItemsCount();
    if (n > MAX_BATCH_ITEMS) {
      throw GrpcErrors.invalidArgument("at most %d items per Deliver, got %d", MAX_BATCH_ITEMS, n);
    }
    long bytes = 0;
    for (FederatedItem item : request.getItemsList()) {
      bytes += item.getBody().size();
    }
    federation.policy().admit(peer, Math.max(1, n), bytes);
    List<CompletableFuture<ItemResult>> results = new ArrayList<>(n);
    for (FederatedItem item : request.getItemsList()) {
      results.add(federation.inbound().deliver(peer, item));
    }
    CompletableFuture.allOf(results.toArray(CompletableFuture[]::new)).whenComplete((v, e) -> {
      DeliverResponse.Builder out = DeliverResponse.newBuilder();
      results.forEach(r -> out.addResults(r.join()));
      response.onNext(out.build());
      response.onCompleted();
    });
  }

  @Override
  public void take(FederatedTakeRequest request, StreamObserver<TakeInvitationResponse> response) {
    federation.policy().admit(PeerAuthInterceptor.PEER.get(), 1, 0);
    byte[] blob = federation.takeLocally(request.getRequestId(), request.getRoutingKeyId(),
        request.getSealedRouting());
    response.onNext(TakeInvitationResponse.newBuilder().setBlob(ByteString.copyFrom(blob)).build());
    response.onCompleted();
  }
}
