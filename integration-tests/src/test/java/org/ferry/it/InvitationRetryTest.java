package org.ferry.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.ForwardingServerCall;
import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.Status;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import org.ferry.proto.v1.InvitationsGrpc;
import org.ferry.sdk.Contact;
import org.ferry.sdk.FerryClient;
import org.ferry.sdk.FerryException;
import org.ferry.sdk.ReceivedMessage;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Accepting an invitation over a network that fails at the worst moment. */
class InvitationRetryTest {
  private static final Duration IDLE = Duration.ofMillis(500);

  @TempDir Path dir;
  private final List<AutoCloseable> open = new ArrayList<>();

  /**
   * Plays a connection that drops right after the server handed out an invitation's bundle:
   * the take happened on the server, the answer never reaches the client.
   */
  static final class DropTakeAnswers implements ServerInterceptor {
    final AtomicInteger toDrop = new AtomicInteger();
    final AtomicInteger dropped = new AtomicInteger();

    @Override
    public <Q, R> ServerCall.Listener<Q> interceptCall(ServerCall<Q, R> call, Metadata h, ServerCallHandler<Q, R> next) {
      if (!call.getMethodDescriptor().getFullMethodName().equals(InvitationsGrpc.getTakeInvitationMethod().getFullMethodName())) {
        return next.startCall(call, h);
      }
      return next.startCall(new ForwardingServerCall.SimpleForwardingServerCall<>(call) {
        boolean cut;

        @Override
        public void sendMessage(R message) {
          if (toDrop.getAndUpdate(n -> Math.max(0, n - 1)) > 0) {
            cut = true;
            dropped.incrementAndGet();
            super.close(Status.UNAVAILABLE.withDescription("connection reset"), new Metadata());
            return;
          }
          super.sendMessage(message);
        }

        @Override
        public void close(Status status, Metadata trailers) {
          if (!cut) {
            super.close(status, trailers);
          }
        }
      }, h);
    }
  }

  private <T extends AutoCloseable> T keep(T c) {
    open.add(0, c);
    return c;
  }

  @AfterEach
  void closeAll() throws Exception {
    for (AutoCloseable c : open) {
      c.close();
    }
  }

  private FerryClient user(RunningServer server, String name) {
    FerryClient c = keep(TestClients.open(dir, name));
    c.initialize(server.address());
    return c;
  }

  /** Alice, Bob and Mallory on one server that {@code interceptor} watches. */
  private record People(FerryClient alice, FerryClient bob, FerryClient mallory) {}

  private People people(ServerInterceptor interceptor) throws Exception {
    RunningServer server = keep(new RunningServer(dir.resolve("server"), java.time.Clock.systemUTC(), interceptor));
    return new People(user(server, "alice"), user(server, "bob"), user(server, "mallory"));
  }

  private static List<String> texts(FerryClient c) {
    List<String> got = new ArrayList<>();
    c.receive(IDLE, m -> got.add(m.text()));
    return got;
  }

  @Test
  void anAcceptanceWhoseAnswerWasLostSucceedsWhenTriedAgainAndBothSidesConnect() throws Exception {
    DropTakeAnswers drop = new DropTakeAnswers();
    People p = people(drop);
    FerryClient alice = p.alice();
    FerryClient bob = p.bob();
    String uri = alice.createInvitation("bob").uri();

    drop.toDrop.set(1);
    FerryException lost = assertThrows(FerryException.class, () -> bob.acceptInvitation(uri, "alice"));
    assertEquals(1, drop.dropped.get(), "the server handed the bundle out and the answer was lost");
    assertEquals(FerryException.Reason.UNREACHABLE, lost.reason(), lost.getMessage());

    Contact contact = bob.acceptInvitation(uri, "alice");
    assertEquals(Contact.State.ESTABLISHED, contact.state());
    bob.send("alice", "made it");
    assertEquals(List.of("made it"), texts(alice));
    assertEquals(Contact.State.ESTABLISHED, alice.contact("bob").orElseThrow().state());
    alice.send("bob", "so did this");
    assertEquals(List.of("so did this"), texts(bob));
    assertEquals(alice.contact("bob").orElseThrow().safetyNumber(), bob.contact("alice").orElseThrow().safetyNumber());
  }

  /** Refuses the next {@code toRefuse} sends as a dropped connection would (nothing stored). */
  static final class RefuseSends implements ServerInterceptor {
    final AtomicInteger toRefuse = new AtomicInteger();

    @Override
    public <Q, R> ServerCall.Listener<Q> interceptCall(ServerCall<Q, R> call, Metadata h, ServerCallHandler<Q, R> next) {
      String method = call.getMethodDescriptor().getFullMethodName();
      if ((method.equals(org.ferry.proto.v1.MailboxesGrpc.getSendMethod().getFullMethodName())
          || method.equals(org.ferry.proto.v1.MailboxesGrpc.getSendStreamMethod().getFullMethodName()))
          && toRefuse.getAndUpdate(n -> Math.max(0, n - 1)) > 0) {
        call.close(Status.UNAVAILABLE.withDescription("connection reset"), new Metadata());
        return new ServerCall.Listener<>() {};
      }
      return next.startCall(call, h);
    }
  }

  @Test
  void anAcceptanceWhoseHandshakeDidNotLeaveSendsItWhenTriedAgainAndTheInviterSeesIt() throws Exception {
    RefuseSends refuse = new RefuseSends();
    People p = people(refuse);
    FerryClient alice = p.alice();
    FerryClient bob = p.bob();
    String uri = alice.createInvitation("bob").uri();

    // The acceptance is made, but its handshake to Alice's server is cut off (every retry too).
    refuse.toRefuse.set(100);
    assertThrows(FerryException.class, () -> bob.acceptInvitation(uri, "alice"));
    refuse.toRefuse.set(0);

    // Bob tries again, as anyone would: already accepted, and now the handshake goes.
    FerryException again = assertThrows(FerryException.class, () -> bob.acceptInvitation(uri, "alice"));
    assertEquals(FerryException.Reason.ALREADY_ACCEPTED, again.reason());
    texts(alice);
    assertEquals(Contact.State.ESTABLISHED, alice.contact("bob").orElseThrow().state(),
        "Alice learns of the acceptance without Bob writing first");
  }

  @Test
  void aSecondTakerIsStillWarnedOfInterception() throws Exception {
    DropTakeAnswers drop = new DropTakeAnswers();
    People p = people(drop);
    FerryClient alice = p.alice();
    FerryClient bob = p.bob();
    FerryClient mallory = p.mallory();
    String uri = alice.createInvitation("bob").uri();

    drop.toDrop.set(1);
    assertThrows(FerryException.class, () -> bob.acceptInvitation(uri, "alice"));
    FerryException second = assertThrows(FerryException.class, () -> mallory.acceptInvitation(uri, "alice"));
    assertEquals(FerryException.Reason.INVITATION_USED, second.reason());
    assertTrue(second.getMessage().contains("intercepted"), second.getMessage());
    assertTrue(mallory.contacts().isEmpty());
    // Bob, the first taker, still gets in.
    assertEquals(Contact.State.ESTABLISHED, bob.acceptInvitation(uri, "alice").state());
  }

  /** Records the mailboxes the server made and the ones it was asked to delete. */
  static final class MailboxLedger implements ServerInterceptor {
    final List<com.google.protobuf.ByteString> created = new java.util.concurrent.CopyOnWriteArrayList<>();
    final List<com.google.protobuf.ByteString> deleted = new java.util.concurrent.CopyOnWriteArrayList<>();

    @Override
    public <Q, R> ServerCall.Listener<Q> interceptCall(ServerCall<Q, R> call, Metadata h, ServerCallHandler<Q, R> next) {
      ServerCall.Listener<Q> listener = next.startCall(new ForwardingServerCall.SimpleForwardingServerCall<>(call) {
        @Override
        public void sendMessage(R message) {
          if (message instanceof org.ferry.proto.v1.CreateMailboxResponse r) {
            created.add(r.getMailboxId());
          }
          super.sendMessage(message);
        }
      }, h);
      return new io.grpc.ForwardingServerCallListener.SimpleForwardingServerCallListener<>(listener) {
        @Override
        public void onMessage(Q message) {
          if (message instanceof org.ferry.proto.v1.DeleteMailboxRequest d) {
            deleted.add(d.getMailboxId());
          }
          super.onMessage(message);
        }
      };
    }
  }

  @Test
  void acceptingTwiceSaysSoAndAFailedAcceptanceLeavesNoMailboxBehind() throws Exception {
    MailboxLedger ledger = new MailboxLedger();
    People p = people(ledger);
    FerryClient alice = p.alice();
    FerryClient bob = p.bob();
    FerryClient mallory = p.mallory();
    String uri = alice.createInvitation("bob").uri();
    bob.acceptInvitation(uri, "alice");

    FerryException again = assertThrows(FerryException.class, () -> bob.acceptInvitation(uri, "alice2"));
    assertEquals(FerryException.Reason.ALREADY_ACCEPTED, again.reason());
    assertTrue(again.getMessage().contains("'alice'"), again.getMessage());

    int before = ledger.created.size();
    FerryException used = assertThrows(FerryException.class, () -> mallory.acceptInvitation(uri, "alice"));
    assertEquals(FerryException.Reason.INVITATION_USED, used.reason());
    List<com.google.protobuf.ByteString> made = ledger.created.subList(before, ledger.created.size());
    assertEquals(1, made.size(), "the failed try made one mailbox");
    assertEquals(made, ledger.deleted, "and deleted it again");
  }

  @Test
  void aRemovedContactIsGoneHereAndOnTheServerAndARenamedOneKeepsItsSession() throws Exception {
    MailboxLedger ledger = new MailboxLedger();
    People p = people(ledger);
    FerryClient alice = p.alice();
    FerryClient bob = p.bob();
    bob.acceptInvitation(alice.createInvitation("bob").uri(), "alice");
    bob.send("alice", "one");
    assertEquals(List.of("one"), texts(alice));
    String safety = alice.contact("bob").orElseThrow().safetyNumber().orElseThrow();

    Contact renamed = alice.renameContact("bob", "Bob.R");
    assertEquals("Bob.R", renamed.label());
    assertEquals(safety, renamed.safetyNumber().orElseThrow());
    assertTrue(alice.contact("bob").isEmpty());
    FerryException taken = assertThrows(FerryException.class, () -> alice.renameContact("Bob.R", "-x"));
    assertEquals(FerryException.Reason.INVALID_LABEL, taken.reason());
    alice.send("Bob.R", "still you");
    assertEquals(List.of("still you"), texts(bob));

    String invitedUri = alice.createInvitation("carol").uri();
    alice.removeContact("carol");
    FerryException gone = assertThrows(FerryException.class, () -> p.mallory().acceptInvitation(invitedUri, "alice"));
    assertEquals(FerryException.Reason.INVALID_INVITATION, gone.reason(), "the invitation went with its mailbox");

    int deletedBefore = ledger.deleted.size();
    bob.removeContact("alice");
    assertEquals(deletedBefore + 1, ledger.deleted.size());
    assertTrue(bob.contacts().isEmpty());
    FerryException unknown = assertThrows(FerryException.class, () -> bob.send("alice", "x"));
    assertEquals(FerryException.Reason.UNKNOWN_CONTACT, unknown.reason());
    FerryException noMailbox = assertThrows(FerryException.class, () -> alice.send("Bob.R", "are you there?"));
    assertTrue(noMailbox.getMessage().length() > 0);
  }
}
