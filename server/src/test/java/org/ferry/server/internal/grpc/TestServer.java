package org.ferry.server.internal.grpc;

import com.google.protobuf.ByteString;
import io.grpc.ManagedChannel;
import io.grpc.Server;
import io.grpc.ServerInterceptors;
import io.grpc.inprocess.InProcessChannelBuilder;
import io.grpc.inprocess.InProcessServerBuilder;
import java.nio.file.Path;
import java.security.KeyPair;
import java.security.SecureRandom;
import java.time.Duration;
import java.time.Instant;
import java.util.Optional;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import org.ferry.proto.OwnerKeys;
import org.ferry.proto.v1.CreateMailboxRequest;
import org.ferry.proto.v1.Envelope;
import org.ferry.proto.v1.InvitationsGrpc;
import org.ferry.proto.v1.MailboxesGrpc;
import org.ferry.proto.v1.SendRequest;
import org.ferry.server.internal.mailbox.MailboxManager;
import org.ferry.server.internal.mailbox.ServerLimits;
import org.ferry.server.internal.store.MailboxStore;
import org.ferry.server.internal.util.Bytes;
import org.ferry.server.internal.time.ServerClock;
import org.ferry.server.testing.MutableClock;

/** The real services over a real store, in-process, with a clock the test moves. */
final class TestServer implements AutoCloseable {
  static final Duration DEFAULT_TTL = Duration.ofDays(21);
  static final SecureRandom RANDOM = new SecureRandom();

  final MutableClock clock = new MutableClock(Instant.parse("2026-01-01T00:00:00Z"));
  final MailboxStore store;
  final MailboxManager manager;
  final StreamLimits streamLimits;
  private final ExecutorService executor = Executors.newFixedThreadPool(2);
  private final Server server;
  final ManagedChannel channel;
  private final String name;

  TestServer(Path dir) throws Exception {
    this(dir, ServerLimits.DEFAULTS);
  }

  TestServer(Path dir, ServerLimits limits) throws Exception {
    this(dir, limits, StreamLimits.forMemory(1L << 30, 1L << 30));
  }

  TestServer(Path dir, ServerLimits limits, StreamLimits streamLimits) throws Exception {
    this(MailboxStore.open(dir), limits, streamLimits);
  }

  /** A server on a store that keeps {@code reserveBytes} of its disk free (see DiskSpace). */
  static TestServer withDiskReserve(Path dir, long reserveBytes, long ballastBytes) throws Exception {
    return new TestServer(MailboxStore.open(dir, reserveBytes, ballastBytes), ServerLimits.DEFAULTS,
        StreamLimits.forMemory(1L << 30, 1L << 30));
  }

  private TestServer(MailboxStore store, ServerLimits limits, StreamLimits streamLimits) throws Exception {
    this.streamLimits = streamLimits;
    this.store = store;
    manager = new MailboxManager(
        store, new ServerClock(clock, clock::nanoTime, Optional.empty()), RANDOM, DEFAULT_TTL, limits);
    ErrorMappingInterceptor errors = new ErrorMappingInterceptor();
    String name = InProcessServerBuilder.generateName();
    server = InProcessServerBuilder.forName(name)
        .addTransportFilter(streamLimits.transportFilter())
        .intercept(streamLimits.interceptor())
        .addService(ServerInterceptors.intercept(
            new MailboxGrpcService(manager, executor, RANDOM, streamLimits), errors))
        .addService(ServerInterceptors.intercept(new InvitationGrpcService(manager), errors))
        .build()
        .start();
    this.name = name;
    channel = newChannel();
  }

  /** Another connection to this server; the caller shuts it down. */
  ManagedChannel newChannel() {
    return InProcessChannelBuilder.forName(name).build();
  }

  MailboxesGrpc.MailboxesBlockingStub mailboxes() {
    return MailboxesGrpc.newBlockingStub(channel);
  }

  InvitationsGrpc.InvitationsBlockingStub invitations() {
    return InvitationsGrpc.newBlockingStub(channel);
  }

  /** A mailbox with its owner key and send capability. */
  record Box(ByteString id, KeyPair owner, byte[] capability) {}

  Box createMailbox() {
    KeyPair owner = OwnerKeys.generate();
    byte[] cap = bytes(32);
    ByteString id = mailboxes().createMailbox(CreateMailboxRequest.newBuilder()
            .setOwnerKey(ByteString.copyFrom(OwnerKeys.encode(owner.getPublic())))
            .setSendCapabilityHash(ByteString.copyFrom(Bytes.sha256(cap)))
            .build())
        .getMailboxId();
    return new Box(id, owner, cap);
  }

  static SendRequest.Builder sendTo(Box box, byte[] envelopeId, int bodyLength) {
    return SendRequest.newBuilder()
        .setMailboxId(box.id())
        .setSendCapability(ByteString.copyFrom(box.capability()))
        .setEnvelope(Envelope.newBuilder()
            .setId(ByteString.copyFrom(envelopeId))
            .setBody(ByteString.copyFrom(bytes(bodyLength))));
  }

  static byte[] bytes(int n) {
    byte[] b = new byte[n];
    RANDOM.nextBytes(b);
    return b;
  }


  @Override
  public void close() {
    channel.shutdownNow();
    server.shutdownNow();
    try {
      server.awaitTermination(10, java.util.concurrent.TimeUnit.SECONDS);
      executor.shutdown();
      executor.awaitTermination(10, java.util.concurrent.TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    store.close();
  }
}
