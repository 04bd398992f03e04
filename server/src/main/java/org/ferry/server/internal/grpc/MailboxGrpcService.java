package org.ferry.server.internal.grpc;

import io.grpc.StatusRuntimeException;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import io.netty.util.internal.ThreadExecutorMap;
import java.util.concurrent.Executor;
import org.ferry.proto.OwnerKeys;
import org.ferry.proto.PaddingBuckets;
import org.ferry.proto.v1.CreateMailboxRequest;
import org.ferry.proto.v1.CreateMailboxResponse;
import org.ferry.proto.v1.DeleteMailboxRequest;
import org.ferry.proto.v1.DeleteMailboxResponse;
import org.ferry.proto.v1.MailboxesGrpc;
import org.ferry.proto.v1.ReceiveRequest;
import org.ferry.proto.v1.ReceiveResponse;
import org.ferry.proto.v1.SendRequest;
import org.ferry.proto.v1.SendResponse;
import org.ferry.proto.v1.SendStreamRequest;
import org.ferry.proto.v1.SendStreamResponse;
import org.ferry.server.internal.mailbox.MailboxId;
import org.ferry.server.internal.mailbox.MailboxManager;
import org.ferry.server.internal.metrics.ServerMetrics;
import org.ferry.server.internal.mailbox.QueuedEnvelope;

/** The Mailboxes service: checks the shape of requests and hands them to the manager. */
public final class MailboxGrpcService extends MailboxesGrpc.MailboxesImplBase {
  private final MailboxManager mailboxes;
  private final Executor deliveryExecutor;
  private final SecureRandom random;
  private final StreamLimits limits;
  private final ServerMetrics metrics;

  /** A service whose receive streams share {@code limits}; its metrics are not read. */
  public MailboxGrpcService(MailboxManager mailboxes, Executor deliveryExecutor, SecureRandom random,
      StreamLimits limits) {
    this(mailboxes, deliveryExecutor, random, limits, ServerMetrics.unread());
  }

  /** A service whose receive streams share {@code limits}, counting sends, deliveries and acks. */
  public MailboxGrpcService(MailboxManager mailboxes, Executor deliveryExecutor, SecureRandom random,
      StreamLimits limits, ServerMetrics metrics) {
    this.metrics = metrics;
    this.mailboxes = mailboxes;
    this.limits = limits;
    this.deliveryExecutor = deliveryExecutor;
    this.random = random;
  }

  @Override
  public void createMailbox(
      CreateMailboxRequest request, StreamObserver<CreateMailboxResponse> response) {
    if (!OwnerKeys.isValid(request.getOwnerKey().toByteArray())) {
      throw GrpcErrors.invalidArgument("owner_key must be a 32-byte Ed25519 public key");
    }
    if (request.getSendCapabilityHash().size() != 32) {
      throw GrpcErrors.invalidArgument(
          "send_capability_hash must be 32 bytes, got %d", request.getSendCapabilityHash().size());
    }
    if (request.getCreationToken().length() > 256) {
      throw GrpcErrors.invalidArgument("creation_token is longer than 256 characters");
    }
    MailboxId id =
        mailboxes.create(
            request.getOwnerKey().toByteArray(),
            request.getSendCapabilityHash().toByteArray(),
            request.getCreationToken());
    response.onNext(CreateMailboxResponse.newBuilder().setMailboxId(id.toWire()).build());
    response.onCompleted();
  }

  @Override
  public void deleteMailbox(DeleteMailboxRequest request, StreamObserver<DeleteMailboxResponse> response) {
    MailboxId id = MailboxId.fromWire(request.getMailboxId());
    if (request.getSignature().size() != 64) {
      throw GrpcErrors.invalidArgument("signature must be 64 bytes, got %d", request.getSignature().size());
    }
    mailboxes.deleteMailbox(id, request.getSignature().toByteArray());
    response.onNext(DeleteMailboxResponse.getDefaultInstance());
    response.onCompleted();
  }

  @Override
  public void send(SendRequest request, StreamObserver<SendResponse> response) {
    // Returns at once; the response goes out when the group commit has synced the envelope.
    accept(request).whenComplete((ok, failure) -> {
      if (failure == null) {
        response.onNext(SendResponse.getDefaultInstance());
        response.onCompleted();
      } else {
        response.onError(GrpcErrors.toStatusException(unwrap(failure), "send"));
      }
    });
  }

  @Override
  public StreamObserver<SendStreamRequest> sendStream(StreamObserver<SendStreamResponse> response) {
    SendStream stream = new SendStream(this::accept, (ServerCallStreamObserver<SendStreamResponse>) response);
    stream.start();
    return stream;
  }

  /**
   * Checks a send's shape (INVALID_ARGUMENT, thrown) and hands it to the manager; the future
   * completes once the envelope is durable.
   */
  private CompletableFuture<Void> accept(SendRequest request) {
    CompletableFuture<Void> durable;
    try {
      durable = check(request);
    } catch (RuntimeException refused) {
      metrics.refused(refused);
      throw refused;
    }
    return durable.whenComplete((ok, failure) -> {
      if (failure == null) {
        metrics.sent();
      } else {
        metrics.refused(unwrap(failure));
      }
    });
  }

  private CompletableFuture<Void> check(SendRequest request) {
    MailboxId id = MailboxId.fromWire(request.getMailboxId());
    if (request.getSendCapability().size() != 32) {
      throw GrpcErrors.invalidArgument(
          "send_capability must be 32 bytes, got %d", request.getSendCapability().size());
    }
    if (!request.hasEnvelope()) {
      throw GrpcErrors.invalidArgument("envelope is required");
    }
    int idLength = request.getEnvelope().getId().size();
    if (idLength != QueuedEnvelope.ENVELOPE_ID_LENGTH) {
      throw GrpcErrors.invalidArgument("envelope id must be 16 bytes, got %d", idLength);
    }
    int bodyLength = request.getEnvelope().getBody().size();
    if (!PaddingBuckets.isBucketSize(bodyLength)) {
      throw GrpcErrors.invalidArgument(
          "envelope body must be one of %s bytes, got %d", PaddingBuckets.SIZES, bodyLength);
    }
    return mailboxes.sendAsync(
        id,
        request.getSendCapability().toByteArray(),
        request.getEnvelope().getId().toByteArray(),
        request.getEnvelope().getBody().toByteArray(),
        Duration.ofSeconds(Integer.toUnsignedLong(request.getTtlSeconds())));
  }

  static Throwable unwrap(Throwable failure) {
    return failure instanceof CompletionException c && c.getCause() != null ? c.getCause() : failure;
  }

  @Override
  public StreamObserver<ReceiveRequest> receive(StreamObserver<ReceiveResponse> response) {
    byte[] nonce = new byte[32];
    random.nextBytes(nonce);
    // The stream's work runs on its connection's event loop when the call starts there (Send and
    // Receive run on the event loop): its deliveries and acks then need no thread hand-off.
    // Elsewhere (in-process tests) on the delivery pool.
    Executor loop = ThreadExecutorMap.currentExecutor();
    ReceiveStream stream;
    try {
      stream = new ReceiveStream(
          mailboxes, limits, (ServerCallStreamObserver<ReceiveResponse>) response,
          loop != null ? loop : deliveryExecutor, nonce, metrics);
    } catch (StatusRuntimeException refused) {
      response.onError(refused);
      return new StreamObserver<>() {
        @Override
        public void onNext(ReceiveRequest ignored) {}

        @Override
        public void onError(Throwable t) {}

        @Override
        public void onCompleted() {}
      };
    }
    stream.start();
    return stream;
  }
}
