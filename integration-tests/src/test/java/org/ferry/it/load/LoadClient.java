package org.ferry.it.load;

import com.google.protobuf.ByteString;
import io.grpc.ManagedChannel;
import io.grpc.netty.GrpcSslContexts;
import io.grpc.netty.NettyChannelBuilder;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslProvider;
import io.netty.handler.ssl.util.InsecureTrustManagerFactory;
import java.security.KeyPair;
import java.security.SecureRandom;
import javax.net.ssl.SSLException;
import org.ferry.proto.OwnerKeys;
import org.ferry.proto.ServerAddress;
import org.ferry.proto.v1.CreateMailboxRequest;
import org.ferry.proto.v1.Envelope;
import org.ferry.proto.v1.MailboxesGrpc;
import org.ferry.server.internal.util.Bytes;
import org.ferry.proto.v1.SendRequest;

/**
 * Raw protocol access for load and crash drivers: no libsignal, so that the driver measures
 * the server and not the client's cryptography. Bodies are random bytes of a bucket size,
 * which the server cannot tell from sealed envelopes.
 */
public final class LoadClient {
  private static final SecureRandom RANDOM = new SecureRandom();

  private LoadClient() {}

  /** A mailbox made by the driver: id, owner key, send capability. */
  public record Mailbox(ByteString id, KeyPair owner, byte[] capability) {
    public SendRequest send(byte[] envelopeId, byte[] body) {
      return SendRequest.newBuilder()
          .setMailboxId(id)
          .setSendCapability(ByteString.copyFrom(capability))
          .setEnvelope(Envelope.newBuilder()
              .setId(ByteString.copyFrom(envelopeId))
              .setBody(ByteString.copyFrom(body)))
          .build();
    }

    /** The owner's signature over a receive challenge. */
    public ByteString sign(ByteString nonce) {
      return ByteString.copyFrom(OwnerKeys.sign(
          owner.getPrivate(), OwnerKeys.RECEIVE_CONTEXT, nonce.toByteArray(), id.toByteArray()));
    }
  }

  /**
   * A TLS channel to a server the driver started itself on loopback. It does not check the
   * server's key: the driver's own child process is the only thing there, and pinning is
   * covered by the SDK's tests.
   */
  public static ManagedChannel channel(ServerAddress server) {
    SslContext ssl;
    try {
      // BoringSSL like the server (and like the peers' clients): the driver shares the cores.
      ssl = GrpcSslContexts.configure(io.netty.handler.ssl.SslContextBuilder.forClient(),
              io.netty.handler.ssl.OpenSsl.isAvailable() ? SslProvider.OPENSSL : SslProvider.JDK)
          .trustManager(InsecureTrustManagerFactory.INSTANCE)
          .protocols("TLSv1.3")
          .build();
    } catch (SSLException e) {
      throw new IllegalStateException(e);
    }
    return NettyChannelBuilder.forAddress(server.host(), server.port())
        .sslContext(ssl)
        .maxInboundMessageSize(128 * 1024)
        .build();
  }

  public static Mailbox createMailbox(io.grpc.Channel channel) {
    KeyPair owner = OwnerKeys.generate();
    byte[] capability = random(32);
    ByteString id = MailboxesGrpc.newBlockingStub(channel)
        .createMailbox(CreateMailboxRequest.newBuilder()
            .setOwnerKey(ByteString.copyFrom(OwnerKeys.encode(owner.getPublic())))
            .setSendCapabilityHash(ByteString.copyFrom(Bytes.sha256(capability)))
            .build())
        .getMailboxId();
    return new Mailbox(id, owner, capability);
  }

  public static byte[] random(int n) {
    byte[] b = new byte[n];
    RANDOM.nextBytes(b);
    return b;
  }

  /** Cheap incompressible bytes for bodies and envelope ids (not for secrets). */
  public static byte[] noise(int n) {
    byte[] b = new byte[n];
    java.util.concurrent.ThreadLocalRandom.current().nextBytes(b);
    return b;
  }

}
