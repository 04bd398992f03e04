package org.ferry.server.internal.grpc;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.grpc.StatusRuntimeException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Optional;
import org.ferry.proto.ErrorReasons;
import org.ferry.server.internal.mailbox.ServerLimits;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The wall clock stepped back or forward (NTP, {@code date}, a restored snapshot): rates follow
 * the time that passed, and envelopes expire neither later nor much sooner than their TTL.
 */
class ClockStepTest {
  @TempDir Path dir;

  private static TestServer rateLimited(Path dir) throws Exception {
    // 2 per second, burst 3.
    return new TestServer(dir, new ServerLimits(10, 1 << 20, 1 << 30, 2, 3, Optional.empty()));
  }

  @Test
  void mailboxCreationRefillsAtItsRateAfterTheClockSteppedBackAnHour() throws Exception {
    try (TestServer server = rateLimited(dir)) {
      for (int i = 0; i < 3; i++) {
        server.createMailbox();
      }
      assertThrows(StatusRuntimeException.class, server::createMailbox);
      server.clock.stepWall(Duration.ofHours(-1));
      server.clock.advance(Duration.ofMillis(500));
      server.createMailbox();
      StatusRuntimeException e = assertThrows(StatusRuntimeException.class, server::createMailbox);
      assertEquals(Optional.of(ErrorReasons.RATE_LIMITED), ErrorReasons.of(e));
      assertEquals(Optional.of(Duration.ofMillis(500)), ErrorReasons.retryAfter(e));
    }
  }

  @Test
  void aClockSteppedForwardAnHourGivesNoExtraMailboxCreations() throws Exception {
    try (TestServer server = rateLimited(dir)) {
      for (int i = 0; i < 3; i++) {
        server.createMailbox();
      }
      server.clock.stepWall(Duration.ofHours(1));
      assertThrows(StatusRuntimeException.class, server::createMailbox);
      server.clock.advance(Duration.ofMillis(500));
      server.createMailbox();
    }
  }

  @Test
  void anEnvelopeWithA2sTtlIsNotDeliveredAfterTheClockSteppedBackAnHourAnd10sPassed() throws Exception {
    try (TestServer server = new TestServer(dir)) {
      TestServer.Box box = server.createMailbox();
      server.mailboxes().send(TestServer.sendTo(box, TestServer.bytes(16), 1024).setTtlSeconds(2).build());
      server.clock.stepWall(Duration.ofHours(-1));
      server.clock.advance(Duration.ofSeconds(10));
      byte[] live = TestServer.bytes(16);
      server.mailboxes().send(TestServer.sendTo(box, live, 1024).build());
      try (OwnerStream owner = new OwnerStream(server).subscribe(box)) {
        assertArrayEquals(live, owner.take(1).get(0).getEnvelope().getId().toByteArray(),
            "the envelope whose 2 s ran out was delivered");
      }
    }
  }

  @Test
  void aClockSteppedForwardAnHourDoesNotExpireAMinuteTtlAfter10s() throws Exception {
    try (TestServer server = new TestServer(dir)) {
      TestServer.Box box = server.createMailbox();
      byte[] id = TestServer.bytes(16);
      server.mailboxes().send(TestServer.sendTo(box, id, 1024).setTtlSeconds(60).build());
      server.clock.stepWall(Duration.ofHours(1));
      server.clock.advance(Duration.ofSeconds(10));
      assertEquals(0, server.manager.sweepExpired(), "a minute's TTL ran out after 10 s");
      try (OwnerStream owner = new OwnerStream(server).subscribe(box)) {
        assertArrayEquals(id, owner.take(1).get(0).getEnvelope().getId().toByteArray());
      }
      // The server's time catches up with the wall clock at twice the pace of time passing:
      // after 30 s, 60 s of its time have gone by and the envelope is out of date.
      server.clock.advance(Duration.ofSeconds(20));
      assertEquals(1, server.manager.sweepExpired());
    }
  }
}
