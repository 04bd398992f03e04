package org.ferry.server.internal.grpc;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.file.Path;
import java.time.Duration;
import org.ferry.server.internal.mailbox.MailboxId;
import org.ferry.server.internal.store.MailboxUsage;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The sweeper removes what has run out by the injected clock, and only that. */
class ExpiryTest {
  @TempDir Path dir;

  @Test
  void sweeperRemovesEnvelopesWhoseTtlRanOutAndKeepsTheRest() throws Exception {
    try (TestServer server = new TestServer(dir)) {
      TestServer.Box box = server.createMailbox();
      MailboxId id = new MailboxId(box.id().toByteArray());
      server.mailboxes().send(TestServer.sendTo(box, TestServer.bytes(16), 1024).setTtlSeconds(3600).build());
      server.mailboxes().send(TestServer.sendTo(box, TestServer.bytes(16), 4096).setTtlSeconds(7200).build());
      server.mailboxes().send(TestServer.sendTo(box, TestServer.bytes(16), 1024).build());

      server.clock.advance(Duration.ofMinutes(59));
      assertEquals(0, server.manager.sweepExpired());
      server.clock.advance(Duration.ofMinutes(1));
      assertEquals(1, server.manager.sweepExpired());
      assertEquals(new MailboxUsage(2, 5120), server.manager.usage(id));

      server.clock.advance(Duration.ofHours(1));
      assertEquals(1, server.manager.sweepExpired());
      server.clock.advance(TestServer.DEFAULT_TTL);
      assertEquals(1, server.manager.sweepExpired());
      assertEquals(new MailboxUsage(0, 0), server.manager.usage(id));
      assertEquals(0, server.store.queuedBytes());
      assertEquals(0, server.store.read(id, 0, 100).envelopes().size());
    }
  }

  @Test
  void aTtlLongerThanTheServersIsCutToIt() throws Exception {
    try (TestServer server = new TestServer(dir)) {
      TestServer.Box box = server.createMailbox();
      server.mailboxes().send(TestServer.sendTo(box, TestServer.bytes(16), 1024)
          .setTtlSeconds((int) TestServer.DEFAULT_TTL.toSeconds() * 2).build());
      server.clock.advance(TestServer.DEFAULT_TTL);
      assertEquals(1, server.manager.sweepExpired());
    }
  }

  @Test
  void sweepingManyExpiredEnvelopesEmptiesTheQueueAcrossBatches() throws Exception {
    try (TestServer server = new TestServer(dir)) {
      TestServer.Box box = server.createMailbox();
      MailboxId id = new MailboxId(box.id().toByteArray());
      for (int i = 0; i < 2500; i++) {
        server.store.append(id, TestServer.bytes(16), new byte[1024], server.clock.instant().plusSeconds(i % 7));
      }
      server.clock.advance(Duration.ofSeconds(7));
      assertEquals(2500, server.manager.sweepExpired());
      assertEquals(new MailboxUsage(0, 0), server.manager.usage(id));
    }
  }
}
