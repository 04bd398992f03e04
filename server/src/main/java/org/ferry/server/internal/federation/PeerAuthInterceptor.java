package org.ferry.server.internal.federation;

import io.grpc.Context;
import io.grpc.Contexts;
import io.grpc.Grpc;
import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.Status;
import java.security.cert.Certificate;
import java.security.cert.X509Certificate;
import javax.net.ssl.SSLPeerUnverifiedException;
import javax.net.ssl.SSLSession;
import org.ferry.proto.ServerAddress;

/**
 * The calling server's identity for the Federation service: the fingerprint of the key in its
 * TLS client certificate. A call without one is closed with UNAUTHENTICATED before it reaches
 * the service.
 */
final class PeerAuthInterceptor implements ServerInterceptor {
  /** The caller's fingerprint, 32 bytes, in the call's context. */
  static final Context.Key<byte[]> PEER = Context.key("ferry-peer");

  @Override
  public <ReqT, RespT> ServerCall.Listener<ReqT> interceptCall(
      ServerCall<ReqT, RespT> call, Metadata headers, ServerCallHandler<ReqT, RespT> next) {
    SSLSession session = call.getAttributes().get(Grpc.TRANSPORT_ATTR_SSL_SESSION);
    byte[] peer = null;
    if (session != null) {
      try {
        Certificate[] chain = session.getPeerCertificates();
        if (chain.length > 0 && chain[0] instanceof X509Certificate cert) {
          peer = ServerAddress.fingerprintOf(cert.getPublicKey());
        }
      } catch (SSLPeerUnverifiedException e) {
        peer = null;
      }
    }
    if (peer == null) {
      call.close(Status.UNAUTHENTICATED.withDescription(
          "federation needs the calling server's TLS client certificate"), new Metadata());
      return new ServerCall.Listener<>() {};
    }
    return Contexts.interceptCall(Context.current().withValue(PEER, peer), call, headers, next);
  }
}
