package org.ferry.server.internal.grpc;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.ferry.proto.v1.CreateMailboxRequest;
import org.ferry.proto.v1.Delivery;
import org.ferry.proto.v1.SendRequest;
import org.ferry.server.internal.mailbox.MailboxId;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class MailboxGrpcServiceTest {
  @TempDir Path dir;
  TestServer server;

  @BeforeEach
  void start() throws Exception {
    server = new TestServer(dir);
  }

  @AfterEach
  void stop() {
    server.close();
  }

  private int stored(TestServer.Box box) {
    return server.store.read(new MailboxId(box.id().toByteArray()), 0, Integer.MAX_VALUE).envelopes().size();
  }

  private static Status.Code codeOf(Runnable call) {
    return assertThrows(StatusRuntimeException.class, call::run).getStatus().getCode();
  }

  @Test
  void sentEnvelopeReachesItsOwnerAndIsDeletedOnlyAfterAck() throws Exception {
    TestServer.Box box = server.createMailbox();
    byte[] envelopeId = TestServer.bytes(16);
    server.mailboxes().send(TestServer.sendTo(box, envelopeId, 1024).build());
    try (OwnerStream owner = new OwnerStream(server).subscribe(box)) {
      Delivery d = owner.take(1).get(0);
      assertArrayEquals(envelopeId, d.getEnvelope().getId().toByteArray());
      assertEquals(1024, d.getEnvelope().getBody().size());
      assertEquals(1, stored(box), "delivered but unacknowledged must stay");
      owner.ack(d);
      await().atMost(Duration.ofSeconds(10)).until(() -> stored(box) == 0);
    }
  }

  @Test
  void unacknowledgedEnvelopesAreRedeliveredInOrderOnTheNextStream() throws Exception {
    TestServer.Box box = server.createMailbox();
    for (int i = 0; i < 3; i++) {
      byte[] id = new byte[16];
      id[0] = (byte) i;
      server.mailboxes().send(TestServer.sendTo(box, id, 1024).build());
    }
    try (OwnerStream first = new OwnerStream(server).subscribe(box)) {
      List<Delivery> got = first.take(3);
      first.ack(got.get(0));
      await().atMost(Duration.ofSeconds(10)).until(() -> stored(box) == 2);
    }
    try (OwnerStream second = new OwnerStream(server).subscribe(box)) {
      List<Delivery> again = second.take(2);
      assertEquals(1, again.get(0).getEnvelope().getId().byteAt(0));
      assertEquals(2, again.get(1).getEnvelope().getId().byteAt(0));
    }
  }

  @Test
  void manyEnvelopesFlowThroughTheAckWindowInSendOrder() throws Exception {
    TestServer.Box box = server.createMailbox();
    int n = ReceiveStream.WINDOW * 3 + 5;
    for (int i = 0; i < n; i++) {
      byte[] id = new byte[16];
      id[0] = (byte) (i >> 8);
      id[1] = (byte) i;
      server.mailboxes().send(TestServer.sendTo(box, id, 1024).build());
    }
    try (OwnerStream owner = new OwnerStream(server).subscribe(box)) {
      for (int i = 0; i < n; i++) {
        Delivery d = owner.take(1).get(0);
        int got = ((d.getEnvelope().getId().byteAt(0) & 0xff) << 8) | (d.getEnvelope().getId().byteAt(1) & 0xff);
        assertEquals(i, got);
        owner.ack(d);
      }
      await().atMost(Duration.ofSeconds(10)).until(() -> stored(box) == 0);
    }
  }

  @Test
  void envelopeSentWhileSubscribedIsPushed() throws Exception {
    TestServer.Box box = server.createMailbox();
    try (OwnerStream owner = new OwnerStream(server).subscribe(box)) {
      byte[] id = TestServer.bytes(16);
      server.mailboxes().send(TestServer.sendTo(box, id, 4096).build());
      assertArrayEquals(id, owner.take(1).get(0).getEnvelope().getId().toByteArray());
    }
  }

  @Test
  void sendToUnknownMailboxIsNotFound() {
    TestServer.Box box = server.createMailbox();
    SendRequest req = TestServer.sendTo(box, TestServer.bytes(16), 1024)
        .setMailboxId(ByteString.copyFrom(TestServer.bytes(32)))
        .build();
    assertEquals(Status.Code.NOT_FOUND, codeOf(() -> server.mailboxes().send(req)));
  }

  @Test
  void sendWithWrongCapabilityIsDeniedAndStoresNothing() {
    TestServer.Box box = server.createMailbox();
    SendRequest req = TestServer.sendTo(box, TestServer.bytes(16), 1024)
        .setSendCapability(ByteString.copyFrom(TestServer.bytes(32)))
        .build();
    assertEquals(Status.Code.PERMISSION_DENIED, codeOf(() -> server.mailboxes().send(req)));
    assertEquals(0, stored(box));
  }

  @ParameterizedTest
  @ValueSource(ints = {0, 1, 1000, 1023, 1025, 2048, 65535, 65537, 100_000})
  void bodyThatIsNotAPaddingBucketIsInvalidAndStoresNothing(int length) {
    TestServer.Box box = server.createMailbox();
    SendRequest req = TestServer.sendTo(box, TestServer.bytes(16), length).build();
    assertEquals(Status.Code.INVALID_ARGUMENT, codeOf(() -> server.mailboxes().send(req)));
    assertEquals(0, stored(box));
  }

  @ParameterizedTest
  @ValueSource(ints = {1024, 4096, 16384, 65536})
  void everyPaddingBucketIsAccepted(int length) {
    TestServer.Box box = server.createMailbox();
    server.mailboxes().send(TestServer.sendTo(box, TestServer.bytes(16), length).build());
    assertEquals(1, stored(box));
  }

  @Test
  void malformedIdsAndCapabilitiesAreInvalidArguments() {
    TestServer.Box box = server.createMailbox();
    SendRequest good = TestServer.sendTo(box, TestServer.bytes(16), 1024).build();
    assertEquals(Status.Code.INVALID_ARGUMENT, codeOf(() -> server.mailboxes().send(
        good.toBuilder().setMailboxId(ByteString.copyFrom(TestServer.bytes(31))).build())));
    assertEquals(Status.Code.INVALID_ARGUMENT, codeOf(() -> server.mailboxes().send(
        good.toBuilder().setEnvelope(good.getEnvelope().toBuilder().setId(ByteString.copyFrom(TestServer.bytes(15)))).build())));
    assertEquals(Status.Code.INVALID_ARGUMENT, codeOf(() -> server.mailboxes().send(
        good.toBuilder().setSendCapability(ByteString.copyFrom(TestServer.bytes(33))).build())));
    assertEquals(Status.Code.INVALID_ARGUMENT, codeOf(() -> server.mailboxes().send(
        good.toBuilder().clearEnvelope().build())));
    assertEquals(0, stored(box));
  }

  @Test
  void createMailboxRefusesKeysThatAreNotEd25519AndHashesOfTheWrongSize() {
    assertEquals(Status.Code.INVALID_ARGUMENT, codeOf(() -> server.mailboxes().createMailbox(
        CreateMailboxRequest.newBuilder()
            .setOwnerKey(ByteString.copyFrom(TestServer.bytes(31)))
            .setSendCapabilityHash(ByteString.copyFrom(TestServer.bytes(32)))
            .build())));
    TestServer.Box box = server.createMailbox();
    assertEquals(Status.Code.INVALID_ARGUMENT, codeOf(() -> server.mailboxes().createMailbox(
        CreateMailboxRequest.newBuilder()
            .setOwnerKey(ByteString.copyFrom(org.ferry.proto.OwnerKeys.encode(box.owner().getPublic())))
            .setSendCapabilityHash(ByteString.copyFrom(TestServer.bytes(16)))
            .build())));
  }

  @Test
  void subscribingWithAnotherKeysSignatureIsUnauthenticated() {
    TestServer.Box box = server.createMailbox();
    TestServer.Box other = server.createMailbox();
    OwnerStream stream = new OwnerStream(server);
    byte[] wrong = org.ferry.proto.OwnerKeys.sign(
        other.owner().getPrivate(), org.ferry.proto.OwnerKeys.RECEIVE_CONTEXT, stream.nonce(), box.id().toByteArray());
    stream.subscribeSigned(box.id(), wrong);
    assertEquals(Status.Code.UNAUTHENTICATED, stream.awaitEnd().getCode());
  }

  @Test
  void aSignatureOverAnEarlierStreamsChallengeIsRefused() {
    TestServer.Box box = server.createMailbox();
    OwnerStream first = new OwnerStream(server);
    byte[] replayed = org.ferry.proto.OwnerKeys.sign(
        box.owner().getPrivate(), org.ferry.proto.OwnerKeys.RECEIVE_CONTEXT, first.nonce(), box.id().toByteArray());
    first.close();
    OwnerStream second = new OwnerStream(server);
    second.subscribeSigned(box.id(), replayed);
    assertEquals(Status.Code.UNAUTHENTICATED, second.awaitEnd().getCode());
  }

  @Test
  void subscribingToAnUnknownMailboxIsNotFound() {
    OwnerStream stream = new OwnerStream(server);
    stream.subscribeSigned(ByteString.copyFrom(TestServer.bytes(32)), TestServer.bytes(64));
    assertEquals(Status.Code.NOT_FOUND, stream.awaitEnd().getCode());
  }

  @Test
  void expiredEnvelopesAreNeverDeliveredAndAreDeleted() throws Exception {
    TestServer.Box box = server.createMailbox();
    server.mailboxes().send(TestServer.sendTo(box, TestServer.bytes(16), 1024).setTtlSeconds(60).build());
    byte[] keeper = TestServer.bytes(16);
    server.mailboxes().send(TestServer.sendTo(box, keeper, 1024).build());
    server.clock.advance(Duration.ofSeconds(61));
    try (OwnerStream owner = new OwnerStream(server).subscribe(box)) {
      Delivery d = owner.take(1).get(0);
      assertArrayEquals(keeper, d.getEnvelope().getId().toByteArray());
      // Deleted on the way, through the group commit without waiting for it.
      await().atMost(Duration.ofSeconds(10)).until(() -> stored(box) == 1);
    }
  }

  @Test
  void envelopesExpireAfterTheDefaultTtlEvenIfTheSenderAsksForMore() throws Exception {
    TestServer.Box box = server.createMailbox();
    server.mailboxes().send(TestServer.sendTo(box, TestServer.bytes(16), 1024).setTtlSeconds(Integer.MAX_VALUE).build());
    server.clock.advance(TestServer.DEFAULT_TTL.plusSeconds(1));
    assertTrue(server.store.read(new MailboxId(box.id().toByteArray()), 0, 10).envelopes().get(0)
        .isExpired(server.clock.instant()));
  }
}
