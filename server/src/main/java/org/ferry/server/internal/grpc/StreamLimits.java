package org.ferry.server.internal.grpc;

import io.grpc.Attributes;
import io.grpc.Context;
import io.grpc.Contexts;
import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.ServerTransportFilter;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.ferry.server.internal.mailbox.MailboxId;

/**
 * What receive streams may hold, so that no client, however it behaves, can make the server run
 * out of memory (DESIGN.md, threat model: hostile clients).
 *
 * <p>A receive stream sends only while its transport is ready (gRPC's on-ready threshold, 32 KiB
 * queued) and reads the store at most {@link #READ_BYTES} at a time, so the bytes it can have
 * queued in the transport, in direct memory, are at most {@link #STREAM_BYTES}. Each stream
 * reserves that much from its connection's and the server's outbound budget when it opens, and is
 * refused with RESOURCE_EXHAUSTED when either is spent. Envelopes that writers hand straight to
 * streams (on heap) come out of one shared handoff budget; when it is spent they are left in the
 * store and read from there, which costs time, never an envelope.
 *
 * <p>Also RESOURCE_EXHAUSTED: more than {@code streamsPerConnection} receive streams on one
 * connection, more than {@code streamsPerMailbox} subscriptions to one mailbox.
 */
public final class StreamLimits {
  /** Bytes of envelopes one store read returns, at most (at least one envelope): 32 KiB. */
  static final int READ_BYTES = 32 * 1024;
  /**
   * The most bytes one receive stream can have queued in its transport: gRPC's default on-ready
   * threshold (32 KiB), one read ({@link #READ_BYTES}) and one largest delivery (64 KiB body and
   * framing): 192 KiB.
   */
  static final long STREAM_BYTES = 192 * 1024;

  private static final Attributes.Key<Connection> CONNECTION = Attributes.Key.create("ferry.connection");
  private static final Context.Key<Connection> CONNECTION_CONTEXT = Context.key("ferry.connection");

  private final int streamsPerConnection;
  private final long bytesPerConnection;
  private final long totalBytes;
  private final int streamsPerMailbox;
  private final long handoffTotal;
  private final AtomicLong reserved = new AtomicLong();
  private final AtomicLong handoff = new AtomicLong();
  private final Map<MailboxId, Integer> subscriptions = new ConcurrentHashMap<>();

  /** One client connection's share. */
  static final class Connection {
    final AtomicInteger streams = new AtomicInteger();
    final AtomicLong reserved = new AtomicLong();
  }

  /**
   * @param streamsPerConnection receive streams on one connection, at most
   * @param bytesPerConnection outbound bytes the receive streams of one connection may reserve
   * @param totalBytes outbound bytes all receive streams together may reserve; size it well under
   *     the JVM's direct-memory limit ({@link #forMemory})
   * @param streamsPerMailbox receive streams subscribed to one mailbox at once, at most
   * @param handoffTotal heap bytes of envelopes handed to streams and not yet sent, all together
   * @throws IllegalArgumentException if a limit is not positive
   */
  public StreamLimits(int streamsPerConnection, long bytesPerConnection, long totalBytes,
      int streamsPerMailbox, long handoffTotal) {
    if (streamsPerConnection < 1 || bytesPerConnection < STREAM_BYTES || totalBytes < STREAM_BYTES
        || streamsPerMailbox < 1 || handoffTotal < 0) {
      throw new IllegalArgumentException("stream limits must be positive and hold at least one stream");
    }
    this.streamsPerConnection = streamsPerConnection;
    this.bytesPerConnection = bytesPerConnection;
    this.totalBytes = totalBytes;
    this.streamsPerMailbox = streamsPerMailbox;
    this.handoffTotal = handoffTotal;
  }

  /**
   * Limits for a JVM with {@code maxDirectBytes} of direct memory and {@code maxHeapBytes} of
   * heap: 8 streams and 1.5 MiB per connection, half of direct memory for all outbound
   * bytes, 8 streams per mailbox, an eighth of the heap for handoffs.
   */
  public static StreamLimits forMemory(long maxDirectBytes, long maxHeapBytes) {
    return new StreamLimits(8, 8 * STREAM_BYTES, Math.max(STREAM_BYTES, maxDirectBytes / 2), 8,
        maxHeapBytes / 8);
  }

  /** Gives each connection its own share when its transport is ready. */
  public ServerTransportFilter transportFilter() {
    return new ServerTransportFilter() {
      @Override
      public Attributes transportReady(Attributes attributes) {
        return attributes.toBuilder().set(CONNECTION, new Connection()).build();
      }
    };
  }

  /** Makes the call's connection share visible to the services ({@link #openStream}). */
  public ServerInterceptor interceptor() {
    return new ServerInterceptor() {
      @Override
      public <Q, R> ServerCall.Listener<Q> interceptCall(
          ServerCall<Q, R> call, Metadata headers, ServerCallHandler<Q, R> next) {
        Connection c = call.getAttributes().get(CONNECTION);
        return c == null ? next.startCall(call, headers)
            : Contexts.interceptCall(Context.current().withValue(CONNECTION_CONTEXT, c), call, headers, next);
      }
    };
  }

  /** A receive stream's reservation; {@link #close} gives it back (once). */
  final class Reservation implements AutoCloseable {
    private final Connection connection;
    private final AtomicBoolean closed = new AtomicBoolean();

    private Reservation(Connection connection) {
      this.connection = connection;
    }

    @Override
    public void close() {
      if (closed.compareAndSet(false, true)) {
        connection.streams.decrementAndGet();
        connection.reserved.addAndGet(-STREAM_BYTES);
        reserved.addAndGet(-STREAM_BYTES);
      }
    }
  }

  /**
   * Reserves a new receive stream's share on the current call's connection (a connection of its
   * own where there is none, as in-process).
   *
   * @throws StatusRuntimeException RESOURCE_EXHAUSTED when a limit is reached
   */
  Reservation openStream() {
    Connection c = CONNECTION_CONTEXT.get();
    if (c == null) {
      c = new Connection();
    }
    if (c.streams.incrementAndGet() > streamsPerConnection) {
      c.streams.decrementAndGet();
      throw exhausted("too many receive streams on one connection (at most " + streamsPerConnection + ")");
    }
    if (c.reserved.addAndGet(STREAM_BYTES) > bytesPerConnection) {
      c.reserved.addAndGet(-STREAM_BYTES);
      c.streams.decrementAndGet();
      throw exhausted("this connection's receive streams hold all the outbound memory it may use");
    }
    if (reserved.addAndGet(STREAM_BYTES) > totalBytes) {
      reserved.addAndGet(-STREAM_BYTES);
      c.reserved.addAndGet(-STREAM_BYTES);
      c.streams.decrementAndGet();
      throw exhausted("server busy: too many receive streams; retry later");
    }
    return new Reservation(c);
  }

  /**
   * Counts one more subscription to {@code mailbox}.
   *
   * @throws StatusRuntimeException RESOURCE_EXHAUSTED beyond {@code streamsPerMailbox}
   */
  void subscribe(MailboxId mailbox) {
    boolean[] full = new boolean[1];
    subscriptions.compute(mailbox, (k, n) -> {
      int now = n == null ? 0 : n;
      if (now >= streamsPerMailbox) {
        full[0] = true;
        return n;
      }
      return now + 1;
    });
    if (full[0]) {
      throw exhausted("too many receive streams for this mailbox (at most " + streamsPerMailbox + ")");
    }
  }

  /** Ends one subscription counted by {@link #subscribe}. */
  void unsubscribe(MailboxId mailbox) {
    subscriptions.computeIfPresent(mailbox, (k, n) -> n <= 1 ? null : n - 1);
  }

  /** Takes {@code bytes} from the handoff budget; false (nothing taken) when it is spent. */
  boolean takeHandoff(int bytes) {
    if (handoff.addAndGet(bytes) <= handoffTotal) {
      return true;
    }
    handoff.addAndGet(-bytes);
    return false;
  }

  void returnHandoff(int bytes) {
    handoff.addAndGet(-bytes);
  }

  /** Receive streams open now (each holds one reservation of {@link #STREAM_BYTES}). */
  public long openStreams() {
    return reserved.get() / STREAM_BYTES;
  }

  /** Outbound bytes reserved by open receive streams now. */
  long reservedBytes() {
    return reserved.get();
  }

  /** Heap bytes of handed-over envelopes held by streams now. */
  long handoffBytes() {
    return handoff.get();
  }

  /** Mailboxes with at least one subscription now (for tests of clean-up). */
  int subscribedMailboxes() {
    return subscriptions.size();
  }

  private static StatusRuntimeException exhausted(String message) {
    return Status.RESOURCE_EXHAUSTED.withDescription(message).asRuntimeException();
  }
}
