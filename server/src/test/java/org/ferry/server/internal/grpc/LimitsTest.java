package org.ferry.server.internal.grpc;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.ferry.proto.ErrorReasons;
import org.ferry.proto.OwnerKeys;
import org.ferry.proto.v1.CreateMailboxRequest;
import org.ferry.proto.v1.Delivery;
import org.ferry.server.internal.mailbox.MailboxId;
import org.ferry.server.internal.mailbox.ServerLimits;
import org.ferry.server.internal.store.MailboxUsage;
import org.junit.jupiter.api.Test;
import org.ferry.server.internal.util.Bytes;
import org.junit.jupiter.api.io.TempDir;

/** Quotas, the storage budget, the creation rate and the creation token, through the service. */
class LimitsTest {
  @TempDir Path dir;

  private static ServerLimits limits(long envelopes, long bytes, long budget) {
    return new ServerLimits(envelopes, bytes, budget, 1, 1000, Optional.empty());
  }

  private static StatusRuntimeException refused(Runnable call) {
    return assertThrows(StatusRuntimeException.class, call::run);
  }

  private static MailboxUsage usage(TestServer server, TestServer.Box box) {
    return server.manager.usage(new MailboxId(box.id().toByteArray()));
  }

  @Test
  void sendBeyondTheMailboxEnvelopeQuotaIsRefusedWithNothingWrittenAndOthersUnaffected()
      throws Exception {
    try (TestServer server = new TestServer(dir, limits(3, 1 << 20, 1 << 30))) {
      TestServer.Box full = server.createMailbox();
      TestServer.Box other = server.createMailbox();
      for (int i = 0; i < 3; i++) {
        server.mailboxes().send(TestServer.sendTo(full, TestServer.bytes(16), 1024).build());
      }
      StatusRuntimeException e = refused(() ->
          server.mailboxes().send(TestServer.sendTo(full, TestServer.bytes(16), 1024).build()));
      assertEquals(Status.Code.RESOURCE_EXHAUSTED, e.getStatus().getCode());
      assertEquals(Optional.of(ErrorReasons.MAILBOX_FULL), ErrorReasons.of(e));
      assertEquals(new MailboxUsage(3, 3 * 1024), usage(server, full));
      assertEquals(3 * 1024, server.store.queuedBytes());

      server.mailboxes().send(TestServer.sendTo(other, TestServer.bytes(16), 1024).build());
      assertEquals(new MailboxUsage(1, 1024), usage(server, other));
    }
  }

  @Test
  void sendBeyondTheMailboxByteQuotaIsRefused() throws Exception {
    try (TestServer server = new TestServer(dir, limits(100, 20 * 1024, 1 << 30))) {
      TestServer.Box box = server.createMailbox();
      server.mailboxes().send(TestServer.sendTo(box, TestServer.bytes(16), 16384).build());
      server.mailboxes().send(TestServer.sendTo(box, TestServer.bytes(16), 4096).build());
      StatusRuntimeException e = refused(() ->
          server.mailboxes().send(TestServer.sendTo(box, TestServer.bytes(16), 1024).build()));
      assertEquals(Optional.of(ErrorReasons.MAILBOX_FULL), ErrorReasons.of(e));
      assertEquals(new MailboxUsage(2, 20 * 1024), usage(server, box));
    }
  }

  @Test
  void acknowledgingMakesRoomAgainInAFullMailbox() throws Exception {
    try (TestServer server = new TestServer(dir, limits(2, 1 << 20, 1 << 30))) {
      TestServer.Box box = server.createMailbox();
      server.mailboxes().send(TestServer.sendTo(box, TestServer.bytes(16), 1024).build());
      server.mailboxes().send(TestServer.sendTo(box, TestServer.bytes(16), 1024).build());
      refused(() -> server.mailboxes().send(TestServer.sendTo(box, TestServer.bytes(16), 1024).build()));
      try (OwnerStream owner = new OwnerStream(server).subscribe(box)) {
        Delivery first = owner.take(1).get(0);
        owner.ack(first);
        await().atMost(Duration.ofSeconds(10)).until(() -> usage(server, box).count() == 1);
      }
      server.mailboxes().send(TestServer.sendTo(box, TestServer.bytes(16), 1024).build());
      assertEquals(2, usage(server, box).count());
    }
  }

  @Test
  void theStorageBudgetRefusesSendsToEveryMailboxOnceUsedUp() throws Exception {
    try (TestServer server = new TestServer(dir, limits(100, 1 << 20, 5 * 1024))) {
      TestServer.Box a = server.createMailbox();
      TestServer.Box b = server.createMailbox();
      server.mailboxes().send(TestServer.sendTo(a, TestServer.bytes(16), 4096).build());
      server.mailboxes().send(TestServer.sendTo(b, TestServer.bytes(16), 1024).build());
      StatusRuntimeException e = refused(() ->
          server.mailboxes().send(TestServer.sendTo(b, TestServer.bytes(16), 1024).build()));
      assertEquals(Status.Code.RESOURCE_EXHAUSTED, e.getStatus().getCode());
      assertEquals(Optional.of(ErrorReasons.SERVER_FULL), ErrorReasons.of(e));
      assertEquals(5 * 1024, server.store.queuedBytes());
      assertEquals(new MailboxUsage(1, 1024), usage(server, b));
    }
  }

  @Test
  void concurrentSendersNeverPushAMailboxPastItsQuota() throws Exception {
    int quota = 50;
    try (TestServer server = new TestServer(dir, limits(quota, 1 << 30, 1L << 40))) {
      TestServer.Box box = server.createMailbox();
      ExecutorService pool = Executors.newFixedThreadPool(16);
      try {
        List<Future<Integer>> results = new ArrayList<>();
        for (int t = 0; t < 16; t++) {
          results.add(pool.submit(() -> {
            int ok = 0;
            for (int i = 0; i < 10; i++) {
              try {
                server.mailboxes().send(TestServer.sendTo(box, TestServer.bytes(16), 1024).build());
                ok++;
              } catch (StatusRuntimeException e) {
                assertEquals(Status.Code.RESOURCE_EXHAUSTED, e.getStatus().getCode());
              }
            }
            return ok;
          }));
        }
        int accepted = 0;
        for (Future<Integer> f : results) {
          accepted += f.get();
        }
        MailboxUsage used = usage(server, box);
        assertEquals(accepted, used.count(), "every accepted send is stored, nothing else");
        assertTrue(used.count() <= quota, "quota overshot: " + used.count());
        assertTrue(used.count() > quota / 2, "far too many refused: " + used.count());
      } finally {
        pool.shutdownNow();
      }
    }
  }

  @Test
  void mailboxCreationBeyondTheBurstIsRateLimitedUntilTheClockMoves() throws Exception {
    try (TestServer server =
        new TestServer(dir, new ServerLimits(10, 1 << 20, 1 << 30, 2, 3, Optional.empty()))) {
      for (int i = 0; i < 3; i++) {
        server.createMailbox();
      }
      StatusRuntimeException e = refused(server::createMailbox);
      assertEquals(Status.Code.RESOURCE_EXHAUSTED, e.getStatus().getCode());
      assertEquals(Optional.of(ErrorReasons.RATE_LIMITED), ErrorReasons.of(e));
      assertEquals(Optional.of(Duration.ofMillis(500)), ErrorReasons.retryAfter(e));

      server.clock.advance(Duration.ofMillis(499));
      refused(server::createMailbox);
      server.clock.advance(Duration.ofMillis(1));
      server.createMailbox();
      refused(server::createMailbox);
    }
  }

  @Test
  void aServerWithACreationTokenMakesMailboxesOnlyForThoseWhoGiveIt() throws Exception {
    byte[] tokenHash = Bytes.sha256("open sesame".getBytes(StandardCharsets.UTF_8));
    try (TestServer server =
        new TestServer(dir, new ServerLimits(10, 1 << 20, 1 << 30, 5, 100, Optional.of(tokenHash)))) {
      for (String wrong : List.of("", "open sesame ", "Open sesame")) {
        StatusRuntimeException e = refused(() -> server.mailboxes().createMailbox(request(wrong)));
        assertEquals(Status.Code.UNAUTHENTICATED, e.getStatus().getCode());
        assertEquals(Optional.of(ErrorReasons.CREATION_TOKEN_REQUIRED), ErrorReasons.of(e));
      }
      assertEquals(32, server.mailboxes().createMailbox(request("open sesame")).getMailboxId().size());
    }
  }

  private static CreateMailboxRequest request(String token) {
    return CreateMailboxRequest.newBuilder()
        .setOwnerKey(ByteString.copyFrom(OwnerKeys.encode(OwnerKeys.generate().getPublic())))
        .setSendCapabilityHash(ByteString.copyFrom(TestServer.bytes(32)))
        .setCreationToken(token)
        .build();
  }
}
