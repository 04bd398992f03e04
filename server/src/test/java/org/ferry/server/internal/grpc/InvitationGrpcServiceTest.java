package org.ferry.server.internal.grpc;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.time.Duration;
import org.ferry.proto.ErrorReasons;
import org.ferry.proto.OwnerKeys;
import org.ferry.proto.v1.PutInvitationRequest;
import org.ferry.proto.v1.TakeInvitationRequest;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.ferry.server.internal.util.Bytes;
import org.junit.jupiter.api.io.TempDir;

class InvitationGrpcServiceTest {
  @TempDir Path dir;
  TestServer server;
  TestServer.Box box;
  byte[] token;
  byte[] blob;

  @BeforeEach
  void start() throws Exception {
    server = new TestServer(dir);
    box = server.createMailbox();
    token = TestServer.bytes(32);
    blob = TestServer.bytes(3000);
  }

  @AfterEach
  void stop() {
    server.close();
  }

  private PutInvitationRequest put(int ttl, java.security.PrivateKey signer) {
    byte[] tokenHash = Bytes.sha256(token);
    byte[] sig = OwnerKeys.sign(signer, OwnerKeys.PUT_INVITATION_CONTEXT,
        box.id().toByteArray(), tokenHash, Bytes.sha256(blob), ByteBuffer.allocate(4).putInt(ttl).array());
    return PutInvitationRequest.newBuilder()
        .setMailboxId(box.id())
        .setFetchTokenHash(ByteString.copyFrom(tokenHash))
        .setBlob(ByteString.copyFrom(blob))
        .setTtlSeconds(ttl)
        .setSignature(ByteString.copyFrom(sig))
        .build();
  }

  private byte[] take(byte[] fetchToken) {
    return server.invitations().takeInvitation(TakeInvitationRequest.newBuilder()
            .setMailboxId(box.id())
            .setFetchToken(ByteString.copyFrom(fetchToken))
            .build())
        .getBlob()
        .toByteArray();
  }

  private byte[] take(byte[] fetchToken, byte[] takeId) {
    return server.invitations().takeInvitation(TakeInvitationRequest.newBuilder()
            .setMailboxId(box.id())
            .setFetchToken(ByteString.copyFrom(fetchToken))
            .setTakeId(ByteString.copyFrom(takeId))
            .build())
        .getBlob()
        .toByteArray();
  }

  private static StatusRuntimeException failure(Runnable call) {
    return assertThrows(StatusRuntimeException.class, call::run);
  }

  @Test
  void anInvitationIsHandedOutOnceThenReportedAsUsed() {
    server.invitations().putInvitation(put(3600, box.owner().getPrivate()));
    assertArrayEquals(blob, take(token));
    StatusRuntimeException second = failure(() -> take(token));
    assertEquals(Status.Code.NOT_FOUND, second.getStatus().getCode());
    assertTrue(second.getStatus().getDescription().contains("already used"));
    assertEquals(ErrorReasons.INVITATION_USED, ErrorReasons.of(second).orElseThrow());
  }

  @Test
  void aWrongFetchTokenIsDeniedAndLeavesTheInvitationUsable() {
    server.invitations().putInvitation(put(3600, box.owner().getPrivate()));
    assertEquals(Status.Code.PERMISSION_DENIED, failure(() -> take(TestServer.bytes(32))).getStatus().getCode());
    assertArrayEquals(blob, take(token));
  }

  @Test
  void anExpiredInvitationIsNotFound() {
    server.invitations().putInvitation(put(60, box.owner().getPrivate()));
    server.clock.advance(Duration.ofSeconds(60));
    StatusRuntimeException e = failure(() -> take(token));
    assertEquals(Status.Code.NOT_FOUND, e.getStatus().getCode());
    assertTrue(e.getStatus().getDescription().contains("expired"));
    assertEquals(ErrorReasons.INVITATION_EXPIRED, ErrorReasons.of(e).orElseThrow());
  }

  @Test
  void sweptInvitationsAndUsedMarkersReadAsNeverStored() {
    server.invitations().putInvitation(put(60, box.owner().getPrivate()));
    assertArrayEquals(blob, take(token));
    server.clock.advance(Duration.ofSeconds(59));
    server.manager.sweepExpired();
    assertEquals(ErrorReasons.INVITATION_USED, ErrorReasons.of(failure(() -> take(token))).orElseThrow());
    server.clock.advance(Duration.ofSeconds(1));
    server.manager.sweepExpired();
    StatusRuntimeException e = failure(() -> take(token));
    assertEquals(Status.Code.NOT_FOUND, e.getStatus().getCode());
    assertTrue(ErrorReasons.of(e).isEmpty(), "swept: not known at all any more");
  }

  @Test
  void onlyTheMailboxOwnerCanStoreItsInvitation() {
    TestServer.Box stranger = server.createMailbox();
    assertEquals(Status.Code.UNAUTHENTICATED,
        failure(() -> server.invitations().putInvitation(put(3600, stranger.owner().getPrivate()))).getStatus().getCode());
    assertEquals(Status.Code.NOT_FOUND, failure(() -> take(token)).getStatus().getCode());
  }

  @Test
  void ttlAndSizeOutOfRangeAreInvalidArguments() {
    assertEquals(Status.Code.INVALID_ARGUMENT,
        failure(() -> server.invitations().putInvitation(put(0, box.owner().getPrivate()))).getStatus().getCode());
    assertEquals(Status.Code.INVALID_ARGUMENT,
        failure(() -> server.invitations().putInvitation(put(31 * 86400, box.owner().getPrivate()))).getStatus().getCode());
    blob = TestServer.bytes(8193);
    assertEquals(Status.Code.INVALID_ARGUMENT,
        failure(() -> server.invitations().putInvitation(put(3600, box.owner().getPrivate()))).getStatus().getCode());
  }

  @Test
  void aTakerWhoseAnswerWasLostGetsTheSameBundleAgainForTenMinutesAndNobodyElseDoes() {
    server.invitations().putInvitation(put(3600, box.owner().getPrivate()));
    byte[] takeId = TestServer.bytes(16);
    assertArrayEquals(blob, take(token, takeId));
    server.clock.advance(Duration.ofMinutes(9));
    assertArrayEquals(blob, take(token, takeId), "the same taker asks again: same bundle");
    assertEquals(ErrorReasons.INVITATION_USED, ErrorReasons.of(failure(() -> take(token, TestServer.bytes(16)))).orElseThrow());
    assertEquals(ErrorReasons.INVITATION_USED, ErrorReasons.of(failure(() -> take(token))).orElseThrow());
    server.clock.advance(Duration.ofMinutes(1));
    assertEquals(ErrorReasons.INVITATION_USED, ErrorReasons.of(failure(() -> take(token, takeId))).orElseThrow(),
        "after the grace the bundle is gone for everyone");
  }

  @Test
  void theSweeperErasesAKeptBundleWhenTheGraceEnds() {
    server.invitations().putInvitation(put(3600, box.owner().getPrivate()));
    take(token, TestServer.bytes(16));
    server.clock.advance(Duration.ofMinutes(10));
    server.manager.sweepExpired();
    org.ferry.server.internal.mailbox.InvitationBlob kept =
        server.store.invitation(org.ferry.server.internal.mailbox.MailboxId.fromWire(box.id())).orElseThrow();
    assertTrue(kept.taken());
    assertEquals(0, kept.blob().length, "the bundle is erased; only the 'taken' marker stays");
  }

  @Test
  void anOwnerDeletesItsMailboxWithItsInvitationAndEnvelopesAndNobodyElseCan() {
    server.invitations().putInvitation(put(3600, box.owner().getPrivate()));
    server.store.append(org.ferry.server.internal.mailbox.MailboxId.fromWire(box.id()), TestServer.bytes(16),
        new byte[1024], server.clock.instant().plus(Duration.ofDays(1)));
    java.util.function.Function<java.security.PrivateKey, org.ferry.proto.v1.DeleteMailboxRequest> request =
        key -> org.ferry.proto.v1.DeleteMailboxRequest.newBuilder()
            .setMailboxId(box.id())
            .setSignature(ByteString.copyFrom(OwnerKeys.sign(key, OwnerKeys.DELETE_MAILBOX_CONTEXT, box.id().toByteArray())))
            .build();
    StatusRuntimeException stranger = failure(() -> server.mailboxes().deleteMailbox(request.apply(OwnerKeys.generate().getPrivate())));
    assertEquals(Status.Code.UNAUTHENTICATED, stranger.getStatus().getCode());
    server.mailboxes().deleteMailbox(request.apply(box.owner().getPrivate()));
    org.ferry.server.internal.mailbox.MailboxId id = org.ferry.server.internal.mailbox.MailboxId.fromWire(box.id());
    assertTrue(server.store.mailbox(id).isEmpty());
    assertTrue(server.store.invitation(id).isEmpty());
    assertEquals(0, server.store.usage(id).count());
    assertEquals(Status.Code.NOT_FOUND, failure(() -> take(token)).getStatus().getCode());
    assertEquals(Status.Code.NOT_FOUND,
        failure(() -> server.mailboxes().deleteMailbox(request.apply(box.owner().getPrivate()))).getStatus().getCode());
  }
}
