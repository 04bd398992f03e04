package org.ferry.server.internal.federation;

import io.grpc.stub.StreamObserver;
import org.ferry.proto.v1.ForwardRequest;
import org.ferry.proto.v1.ForwardResponse;
import org.ferry.proto.v1.ForwardTakeRequest;
import org.ferry.proto.v1.ForwardingGrpc;
import org.ferry.proto.v1.GetRoutingKeyRequest;
import org.ferry.proto.v1.SignedRoutingKey;
import org.ferry.proto.v1.TakeInvitationResponse;

/** The Forwarding service: this server's own clients reaching other servers through it. */
final class ForwardingGrpcService extends ForwardingGrpc.ForwardingImplBase {
  private final Federation federation;

  ForwardingGrpcService(Federation federation) {
    this.federation = federation;
  }

  @Override
  public void getRoutingKey(GetRoutingKeyRequest request, StreamObserver<SignedRoutingKey> response) {
    federation.authenticate(request.getForwarder(), 0);
    response.onNext(federation.routingKeyOf(request.getServer()));
    response.onCompleted();
  }

  @Override
  public void forward(ForwardRequest request, StreamObserver<ForwardResponse> response) {
    federation.authenticate(request.getForwarder(), request.getBody().size());
    federation.forward(request);
    response.onNext(ForwardResponse.getDefaultInstance());
    response.onCompleted();
  }

  @Override
  public void forwardTake(ForwardTakeRequest request, StreamObserver<TakeInvitationResponse> response) {
    federation.authenticate(request.getForwarder(), 0);
    response.onNext(federation.forwardTake(request));
    response.onCompleted();
  }
}
