package org.ferry.server.internal.grpc;

import com.google.protobuf.ByteString;
import io.grpc.stub.StreamObserver;
import java.time.Duration;
import org.ferry.proto.v1.InvitationsGrpc;
import org.ferry.proto.v1.PutInvitationRequest;
import org.ferry.proto.v1.PutInvitationResponse;
import org.ferry.proto.v1.TakeInvitationRequest;
import org.ferry.proto.v1.TakeInvitationResponse;
import org.ferry.server.internal.mailbox.MailboxId;
import org.ferry.server.internal.mailbox.MailboxManager;

/** The Invitations service: encrypted, single-use prekey bundles. */
public final class InvitationGrpcService extends InvitationsGrpc.InvitationsImplBase {
  private final MailboxManager mailboxes;

  public InvitationGrpcService(MailboxManager mailboxes) {
    this.mailboxes = mailboxes;
  }

  @Override
  public void putInvitation(
      PutInvitationRequest request, StreamObserver<PutInvitationResponse> response) {
    MailboxId id = MailboxId.fromWire(request.getMailboxId());
    if (request.getFetchTokenHash().size() != 32) {
      throw GrpcErrors.invalidArgument("fetch_token_hash must be 32 bytes");
    }
    if (request.getBlob().isEmpty() || request.getBlob().size() > MailboxManager.MAX_INVITATION_BLOB) {
      throw GrpcErrors.invalidArgument(
          "blob must be 1 to %d bytes, got %d",
          MailboxManager.MAX_INVITATION_BLOB, request.getBlob().size());
    }
    long ttl = Integer.toUnsignedLong(request.getTtlSeconds());
    if (ttl < 1 || ttl > MailboxManager.MAX_INVITATION_TTL.toSeconds()) {
      throw GrpcErrors.invalidArgument(
          "ttl_seconds must be 1 to %d, got %d", MailboxManager.MAX_INVITATION_TTL.toSeconds(), ttl);
    }
    mailboxes.putInvitation(
        id,
        request.getFetchTokenHash().toByteArray(),
        request.getBlob().toByteArray(),
        Duration.ofSeconds(ttl),
        request.getSignature().toByteArray());
    response.onNext(PutInvitationResponse.getDefaultInstance());
    response.onCompleted();
  }

  @Override
  public void takeInvitation(
      TakeInvitationRequest request, StreamObserver<TakeInvitationResponse> response) {
    MailboxId id = MailboxId.fromWire(request.getMailboxId());
    if (request.getFetchToken().size() != 32) {
      throw GrpcErrors.invalidArgument("fetch_token must be 32 bytes");
    }
    int takeId = request.getTakeId().size();
    if (takeId != 0 && takeId != 16) {
      throw GrpcErrors.invalidArgument("take_id must be empty or 16 bytes, got %d", takeId);
    }
    byte[] blob = mailboxes.takeInvitation(
        id, request.getFetchToken().toByteArray(), request.getTakeId().toByteArray());
    response.onNext(TakeInvitationResponse.newBuilder().setBlob(ByteString.copyFrom(blob)).build());
    response.onCompleted();
  }
}
