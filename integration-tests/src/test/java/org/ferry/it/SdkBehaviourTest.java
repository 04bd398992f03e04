package org.ferry.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.ForwardingServerCall;
import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.ferry.proto.v1.ReceiveResponse;
import org.ferry.sdk.Contact;
import org.ferry.sdk.FerryClient;
import org.ferry.sdk.FerryException;
import org.ferry.sdk.ReceivedMessage;
import org.ferry.server.testing.MutableClock;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SdkBehaviourTest {
  private static final Duration IDLE = Duration.ofMillis(500);

  @TempDir Path dir;

  private FerryClient client(String name, Clock clock) {
    return TestClients.open(dir, name, clock);
  }

  /** A server and two initialised users on it. */
  private final class Pair implements AutoCloseable {
    final RunningServer server;
    final FerryClient alice;
    final FerryClient bob;

    Pair(Clock serverClock, Clock aliceClock, Clock bobClock, ServerInterceptor... interceptors) throws Exception {
      server = new RunningServer(dir.resolve("server"), serverClock, interceptors);
      alice = client("alice", aliceClock);
      bob = client("bob", bobClock);
      alice.initialize(server.address());
      bob.initialize(server.address());
    }

    Pair(Clock clock, ServerInterceptor... interceptors) throws Exception {
      this(clock, clock, clock, interceptors);
    }

    /** Bob accepts Alice's invitation. */
    Pair connected() {
      bob.acceptInvitation(alice.createInvitation("bob").uri(), "alice");
      return this;
    }

    @Override
    public void close() {
      alice.close();
      bob.close();
      server.close();
    }
  }

  private static List<ReceivedMessage> receiveAll(FerryClient c) {
    List<ReceivedMessage> got = new ArrayList<>();
    c.receive(IDLE, got::add);
    return got;
  }

  /** Plays a faulty or hostile server: every delivery goes out twice. */
  private static final class ReplayEveryDelivery implements ServerInterceptor {
    final java.util.concurrent.atomic.AtomicInteger replayed = new java.util.concurrent.atomic.AtomicInteger();

    @Override
    public <Q, R> ServerCall.Listener<Q> interceptCall(ServerCall<Q, R> call, Metadata h, ServerCallHandler<Q, R> next) {
      return next.startCall(new ForwardingServerCall.SimpleForwardingServerCall<>(call) {
        @Override
        public void sendMessage(R message) {
          super.sendMessage(message);
          if (message instanceof ReceiveResponse r && r.hasDelivery()) {
            super.sendMessage(message);
            replayed.incrementAndGet();
          }
        }
      }, h);
    }
  }

  @Test
  void aReplayedEnvelopeIsHandedToTheAppOnlyOnce() throws Exception {
    ReplayEveryDelivery replay = new ReplayEveryDelivery();
    try (Pair p = new Pair(Clock.systemUTC(), replay).connected()) {
      FerryClient alice = p.alice;
      FerryClient bob = p.bob;
      bob.send("alice", "one");
      bob.send("alice", "two");
      List<ReceivedMessage> got = receiveAll(alice);
      assertEquals(List.of("one", "two"), got.stream().map(ReceivedMessage::text).toList());
      assertTrue(replay.replayed.get() >= 3, "the handshake and both messages were each sent twice");
      assertEquals(List.of(), receiveAll(alice));
      alice.send("bob", "back");
      assertEquals(List.of("back"), receiveAll(bob).stream().map(ReceivedMessage::text).toList());
    }
  }

  /** A server, or a middlebox, that accepts the stream and then says nothing. */
  private static final class SwallowChallenge implements ServerInterceptor {
    @Override
    public <Q, R> ServerCall.Listener<Q> interceptCall(ServerCall<Q, R> call, Metadata h, ServerCallHandler<Q, R> next) {
      return next.startCall(new ForwardingServerCall.SimpleForwardingServerCall<>(call) {
        @Override
        public void sendMessage(R message) {
          if (!(message instanceof ReceiveResponse r && r.hasChallenge())) {
            super.sendMessage(message);
          }
        }
      }, h);
    }
  }

  @Test
  void aServerThatNeverAnswersIsReportedAndNotMistakenForAnEmptyMailbox() throws Exception {
    try (Pair p = new Pair(Clock.systemUTC(), new SwallowChallenge()).connected();
        FerryClient impatient = FerryClient.builder()
            .dataDirectory(dir.resolve("impatient"))
            .storageKey(new byte[32])
            .callTimeout(Duration.ofSeconds(1))
            .build()) {
      impatient.initialize(p.server.address());
      impatient.acceptInvitation(p.alice.createInvitation("impatient").uri(), "alice");
      FerryException e = assertThrows(FerryException.class, () -> impatient.receive(Duration.ofMillis(50), m -> { }));
      assertEquals(FerryException.Reason.UNREACHABLE, e.reason());
      assertTrue(e.getMessage().contains("did not answer in time"), e.getMessage());
    }
  }

  @Test
  void aMessageIsKeptWhenTheAppFailsToTakeItAndHandedOverAgain() throws Exception {
    try (Pair p = new Pair(Clock.systemUTC()).connected()) {
      FerryClient alice = p.alice;
      p.bob.send("alice", "do not lose me");
      assertThrows(IllegalStateException.class, () -> alice.receive(IDLE, m -> {
        throw new IllegalStateException("app crashed while showing the message");
      }));
      List<ReceivedMessage> again = receiveAll(alice);
      assertEquals(1, again.size());
      assertEquals("do not lose me", again.get(0).text());
      assertEquals("bob", again.get(0).contactLabel());
    }
  }

  @Test
  void anInvitationCannotBeAcceptedAfterItExpires() throws Exception {
    MutableClock clock = new MutableClock(java.time.Instant.now());
    try (Pair p = new Pair(clock)) {
      FerryClient alice = p.alice;
      FerryClient bob = p.bob;
      String uri = alice.createInvitation("bob", Duration.ofHours(1)).uri();
      clock.advance(Duration.ofHours(2));
      FerryException e = assertThrows(FerryException.class, () -> bob.acceptInvitation(uri, "alice"));
      assertEquals(FerryException.Reason.INVITATION_EXPIRED, e.reason());
      assertEquals(Contact.State.INVITATION_EXPIRED, alice.contact("bob").orElseThrow().state());
      assertTrue(bob.contacts().isEmpty(), "a refused invitation adds no contact");
    }
  }

  @Test
  void theServerRefusesAnExpiredInvitationEvenIfTheClientsClockIsWrong() throws Exception {
    MutableClock serverClock = new MutableClock(java.time.Instant.now());
    try (Pair p = new Pair(serverClock, serverClock, Clock.systemUTC())) {
      FerryClient bob = p.bob;
      String uri = p.alice.createInvitation("bob", Duration.ofHours(1)).uri();
      serverClock.advance(Duration.ofHours(2));
      FerryException e = assertThrows(FerryException.class, () -> bob.acceptInvitation(uri, "alice"));
      assertEquals(FerryException.Reason.INVITATION_EXPIRED, e.reason());
    }
  }

  @Test
  void acceptingYourOwnInvitationIsRefusedAndLeavesItUsable() throws Exception {
    try (Pair p = new Pair(Clock.systemUTC())) {
      FerryClient alice = p.alice;
      FerryClient bob = p.bob;
      String uri = alice.createInvitation("bob").uri();
      FerryException e = assertThrows(FerryException.class, () -> alice.acceptInvitation(uri, "me"));
      assertEquals(FerryException.Reason.INVALID_INVITATION, e.reason());
      assertEquals(Contact.State.ESTABLISHED, bob.acceptInvitation(uri, "alice").state());
    }
  }

  @Test
  void anInviterLearnsOfTheAcceptanceAndBothSeeTheSameSafetyNumber() throws Exception {
    try (Pair p = new Pair(Clock.systemUTC()).connected()) {
      FerryClient alice = p.alice;
      FerryClient bob = p.bob;
      assertEquals(Contact.State.INVITED, alice.contact("bob").orElseThrow().state());
      List<String> established = new ArrayList<>();
      alice.receive(IDLE, new org.ferry.sdk.MessageListener() {
        @Override
        public void onMessage(ReceivedMessage m) {}

        @Override
        public void onContactEstablished(String label) {
          established.add(label);
        }
      });
      assertEquals(List.of("bob"), established);
      assertEquals(
          alice.contact("bob").orElseThrow().safetyNumber().orElseThrow(),
          bob.contact("alice").orElseThrow().safetyNumber().orElseThrow());
    }
  }
}
