package org.ferry.server.internal.grpc;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;

import com.google.protobuf.ByteString;
import io.grpc.Status;
import io.grpc.stub.StreamObserver;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicBoolean;
import org.ferry.proto.ErrorReasons;
import org.ferry.proto.v1.MailboxesGrpc;
import org.ferry.proto.v1.SendRequest;
import org.ferry.proto.v1.SendStreamRequest;
import org.ferry.proto.v1.SendStreamResponse;
import org.ferry.server.internal.mailbox.MailboxId;
import org.ferry.server.internal.mailbox.ServerLimits;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** SendStream: many sends on one call, each answered alone once durable or refused. */
class SendStreamTest {
  @TempDir Path dir;

  /** The client side of one stream, recording every answer by request id. */
  private static final class Client implements StreamObserver<SendStreamResponse> {
    final Map<Long, SendStreamResponse> answers = new ConcurrentHashMap<>();
    final AtomicBoolean completed = new AtomicBoolean();
    final StreamObserver<SendStreamRequest> requests;

    Client(TestServer server) {
      requests = MailboxesGrpc.newStub(server.channel).sendStream(this);
    }

    void send(long id, SendRequest request) {
      requests.onNext(SendStreamRequest.newBuilder().setRequestId(id).setSend(request).build());
    }

    @Override
    public void onNext(SendStreamResponse r) {
      answers.put(r.getRequestId(), r);
    }

    @Override
    public void onError(Throwable t) {
      throw new AssertionError("the stream must not fail", t);
    }

    @Override
    public void onCompleted() {
      completed.set(true);
    }
  }

  private static int stored(TestServer server, TestServer.Box box) {
    return server.store.read(new MailboxId(box.id().toByteArray()), 0, Integer.MAX_VALUE).envelopes().size();
  }

  @Test
  void everySendOnTheStreamIsAnsweredOnceItIsDurableAndTheStreamEndsAfterTheLast() throws Exception {
    try (TestServer server = new TestServer(dir)) {
      TestServer.Box box = server.createMailbox();
      Client client = new Client(server);
      int n = 3 * SendStream.MAX_IN_FLIGHT / 2;
      for (long i = 0; i < n; i++) {
        client.send(i, TestServer.sendTo(box, TestServer.bytes(16), 1024).build());
      }
      client.requests.onCompleted();
      await().atMost(Duration.ofSeconds(30)).until(client.completed::get);
      assertEquals(n, client.answers.size());
      client.answers.values().forEach(a -> assertEquals(0, a.getCode(), a.toString()));
      assertEquals(n, stored(server, box));
    }
  }

  @Test
  void aRefusedSendIsAnsweredAloneWithSendsCodeAndReasonAndTheStreamGoesOn() throws Exception {
    ServerLimits oneEnvelope = new ServerLimits(1, 1 << 20, 1 << 30, 5, 100, java.util.Optional.empty());
    try (TestServer server = new TestServer(dir, oneEnvelope)) {
      TestServer.Box box = server.createMailbox();
      Client client = new Client(server);
      client.send(1, TestServer.sendTo(box, TestServer.bytes(16), 1000).build());
      client.send(2, TestServer.sendTo(box, TestServer.bytes(16), 1024)
          .setSendCapability(ByteString.copyFrom(TestServer.bytes(32))).build());
      client.send(3, TestServer.sendTo(box, TestServer.bytes(16), 1024).build());
      await().atMost(Duration.ofSeconds(10)).until(() -> client.answers.containsKey(3L));
      client.send(4, TestServer.sendTo(box, TestServer.bytes(16), 1024).build());
      client.requests.onCompleted();
      await().atMost(Duration.ofSeconds(10)).until(client.completed::get);
      assertEquals(Status.Code.INVALID_ARGUMENT.value(), client.answers.get(1L).getCode());
      assertEquals(Status.Code.PERMISSION_DENIED.value(), client.answers.get(2L).getCode());
      assertEquals(0, client.answers.get(3L).getCode());
      assertEquals(Status.Code.RESOURCE_EXHAUSTED.value(), client.answers.get(4L).getCode());
      assertEquals(ErrorReasons.MAILBOX_FULL, client.answers.get(4L).getReason());
      assertEquals(1, stored(server, box));
    }
  }

  /** The server's side of a call, recording what the stream asks of the transport. */
  private static final class FakeCall extends io.grpc.stub.ServerCallStreamObserver<SendStreamResponse> {
    int requested;

    @Override
    public void request(int count) {
      requested += count;
    }

    @Override
    public boolean isCancelled() {
      return false;
    }

    @Override
    public void setOnCancelHandler(Runnable onCancelHandler) {}

    @Override
    public void setCompression(String compression) {}

    @Override
    public boolean isReady() {
      return true;
    }

    @Override
    public void setOnReadyHandler(Runnable onReadyHandler) {}

    @Override
    public void disableAutoInboundFlowControl() {}

    @Override
    public void disableAutoRequest() {}

    @Override
    public void setMessageCompression(boolean enable) {}

    @Override
    public void onNext(SendStreamResponse value) {}

    @Override
    public void onError(Throwable t) {}

    @Override
    public void onCompleted() {}
  }

  @Test
  void aStreamWhoseSendsAreNotYetDurableReadsNoMoreThanItsByteBound() {
    FakeCall call = new FakeCall();
    java.util.List<java.util.concurrent.CompletableFuture<Void>> pending = new java.util.ArrayList<>();
    SendStream stream = new SendStream(r -> {
      java.util.concurrent.CompletableFuture<Void> f = new java.util.concurrent.CompletableFuture<>();
      pending.add(f);
      return f;
    }, call);
    stream.start();
    TestServer.Box box = new TestServer.Box(ByteString.copyFrom(new byte[32]), null, new byte[32]);
    // A client with endless 64 KiB sends: it may send only what the stream asked for.
    int read = 0;
    while (read < call.requested && read < 10_000) {
      stream.onNext(SendStreamRequest.newBuilder().setRequestId(read)
          .setSend(TestServer.sendTo(box, new byte[16], 65536)).build());
      read++;
    }
    long held = (long) read * 65536;
    // Its bound, plus the requests already asked for when it was reached (old code: 1,024, 64 MiB).
    assertEquals(true, held <= SendStream.MAX_IN_FLIGHT_BYTES + SendStream.READ_AHEAD * 65536L,
        "read " + read + " sends of 64 KiB before any was durable");
    // Once they are durable, it asks for more.
    int before = call.requested;
    pending.forEach(f -> f.complete(null));
    assertEquals(true, call.requested > before, "asks for more once answered");
  }
}
