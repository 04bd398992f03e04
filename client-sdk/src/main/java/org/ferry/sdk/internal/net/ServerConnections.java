package org.ferry.sdk.internal.net;

import io.grpc.Channel;
import io.grpc.ClientInterceptors;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.netty.GrpcSslContexts;
import io.grpc.netty.NettyChannelBuilder;
import io.netty.channel.ChannelOption;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslContextBuilder;
import io.netty.handler.ssl.SslProvider;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;
import javax.net.ssl.SSLException;
import java.nio.channels.ClosedChannelException;
import org.ferry.proto.ErrorReasons;
import org.ferry.proto.ServerAddress;
import org.ferry.sdk.FerryException;
import org.ferry.sdk.internal.carrier.CarrierFailure;
import org.ferry.sdk.internal.dial.Dialer;

/**
 * One gRPC channel per server, TLS 1.3 pinned to the server's key, over whichever carrier the
 * {@link Dialer} finds. Unary calls are watched for lines that stall ({@link
 * StalledLineInterceptor}) and made again over the next line while their deadline allows.
 */
public final class ServerConnections implements AutoCloseable {
  static final int MAX_INBOUND_MESSAGE = 128 * 1024;

  private final Map<ServerAddress, ManagedChannel> channels = new HashMap<>();
  private final Map<ServerAddress, Channel> intercepted = new HashMap<>();
  private final Duration callTimeout;
  private final Dialer dialer;
  private final Function<ServerAddress, ManagedChannel> opener;

  public ServerConnections(Duration callTimeout, Dialer dialer) {
    this(callTimeout, dialer, null);
  }

  /**
   * @param opener opens the channel to a server in place of TLS over the dialer's carriers (for
   *     tests with in-process servers); null for the real thing
   */
  public ServerConnections(Duration callTimeout, Dialer dialer, Function<ServerAddress, ManagedChannel> opener) {
    this.callTimeout = callTimeout;
    this.dialer = dialer;
    this.opener = opener != null ? opener : this::open;
  }

  public Dialer dialer() {
    return dialer;
  }

  /** Deadline for unary calls. */
  public Duration callTimeout() {
    return callTimeout;
  }

  /** The channel to {@code server}, opened on first use. */
  public synchronized Channel channel(ServerAddress server) {
    return intercepted.computeIfAbsent(server, s -> ClientInterceptors.intercept(
        channels.computeIfAbsent(s, opener), new StalledLineInterceptor(s, dialer)));
  }

  private ManagedChannel open(ServerAddress server) {
    SslContext ssl;
    try {
      ssl = GrpcSslContexts.configure(SslContextBuilder.forClient(), SslProvider.JDK)
          .trustManager(new PinnedTrustManager(server))
          .protocols("TLSv1.3")
          .build();
    } catch (SSLException e) {
      throw new IllegalStateException("TLS 1.3 is unavailable in this JVM", e);
    }
    return NettyChannelBuilder.forAddress(dialer.address(server))
        .channelFactory(dialer.channelFactory())
        .eventLoopGroup(dialer.localGroup())
        .overrideAuthority(server.hostPort())
        .sslContext(ssl)
        .maxInboundMessageSize(MAX_INBOUND_MESSAGE)
        .keepAliveTime(60, TimeUnit.SECONDS)
        // gRPC asks TCP keepalive of every channel it opens; ours are local channels into the
        // dialer, with no socket to keep alive (the carrier below has its own, and gRPC's pings
        // above run over it), and Netty would log a warning for each. A null value removes the
        // option from the bootstrap (AbstractBootstrap#option), and ours are applied after gRPC's.
        .withOption(ChannelOption.SO_KEEPALIVE, null)
        .build();
  }

  /**
   * Turns a failed call into a {@link FerryException} with a reason an app can act on, and a
   * message naming the server by host and port (never the pinned key's owner's content).
   */
  public FerryException failure(ServerAddress server, StatusRuntimeException e) {
    for (Throwable t = e; t != null; t = t.getCause()) {
      if (t instanceof PinnedTrustManager.PinMismatchException mismatch) {
        return new FerryException(
            FerryException.Reason.SERVER_KEY_MISMATCH,
            "server " + server.hostPort() + " presented key " + mismatch.presented
                + " but the address pins " + server.fingerprintText()
                + ": it may be an impostor; get the server address again through a trusted channel",
            e);
      }
    }
    Status status = e.getStatus();
    String desc = status.getDescription() == null ? status.getCode().toString() : status.getDescription();
    String reason = ErrorReasons.of(e).orElse("");
    switch (reason) {
      case ErrorReasons.MAILBOX_FULL, ErrorReasons.SERVER_FULL -> {
        return new FerryException(FerryException.Reason.RECIPIENT_FULL,
            "server " + server.hostPort() + " holds no more for this contact now: " + desc, e);
      }
      case ErrorReasons.RATE_LIMITED -> {
        String after = ErrorReasons.retryAfter(e)
            .map(d -> "; try again in " + Math.max(1, (d.toMillis() + 999) / 1000) + " s")
            .orElse("");
        return new FerryException(FerryException.Reason.RATE_LIMITED,
            "server " + server.hostPort() + " is making too many mailboxes right now" + after, e);
      }
      case ErrorReasons.CREATION_TOKEN_REQUIRED -> {
        return new FerryException(FerryException.Reason.CREATION_TOKEN_REQUIRED,
            "server " + server.hostPort() + " refused: " + desc
                + " (give the operator's creation token at init)", e);
      }
      default -> {
        // Handled by status code below.
      }
    }
    if (status.getCode() == io.grpc.Status.Code.UNKNOWN && isConnectionLost(e)) {
      return new FerryException(
          FerryException.Reason.UNREACHABLE,
          "lost the connection to server " + server.hostPort() + ": "
              + dialer.lastFailure(server).orElseGet(() -> rootCause(e)), e);
    }
    return switch (status.getCode()) {
      case UNAVAILABLE -> new FerryException(
          FerryException.Reason.UNREACHABLE,
          "cannot reach server " + server.hostPort() + ": "
              + dialer.lastFailure(server).orElseGet(() -> rootCause(e)), e);
      case DEADLINE_EXCEEDED -> notAnsweredInTime(server, e);
      default -> new FerryException(
          FerryException.Reason.REJECTED,
          "server " + server.hostPort() + " refused: " + desc + " (" + status.getCode() + ")", e);
    };
  }

  /**
   * An UNREACHABLE {@link FerryException} for a call to {@code server} that got no answer in
   * time, naming the line it waited on (or, if a dial failed since, each line tried and why).
   *
   * @param cause the failed call, or null
   */
  public FerryException notAnsweredInTime(ServerAddress server, Throwable cause) {
    String lines = dialer.lastFailure(server)
        .or(() -> dialer.routes().inUse(server).map(l -> "waited over " + l.shortForm()))
        .map(f -> " (" + f + ")").orElse("");
    return new FerryException(FerryException.Reason.UNREACHABLE,
        "server " + server.hostPort() + " did not answer in time" + lines, cause);
  }

  /**
   * Whether a call failed because its connection went away (the carrier died), so that the
   * outcome is unknown and the same request may be made again: UNAVAILABLE, or the UNKNOWN
   * "channel closed" that grpc-java reports when a write meets a connection already closed.
   */
  public static boolean isConnectionLost(StatusRuntimeException e) {
    return switch (e.getStatus().getCode()) {
      case UNAVAILABLE -> true;
      case UNKNOWN -> {
        for (Throwable t = e; t != null; t = t.getCause()) {
          if (t instanceof ClosedChannelException) {
            yield true;
          }
        }
        yield false;
      }
      default -> false;
    };
  }

  private static String rootCause(StatusRuntimeException e) {
    Throwable t = e;
    while (t.getCause() != null && t.getCause() != t) {
      t = t.getCause();
    }
    if (t == e) {
      // grpc-java appends the Netty pipeline on further lines: the first is the message.
      return CarrierFailure.describe(new java.io.IOException(e.getStatus().getDescription()));
    }
    return CarrierFailure.describe(t);
  }

  @Override
  public synchronized void close() {
    for (ManagedChannel ch : channels.values()) {
      ch.shutdownNow();
    }
    for (ManagedChannel ch : channels.values()) {
      try {
        ch.awaitTermination(5, TimeUnit.SECONDS);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        return;
      }
    }
    channels.clear();
    intercepted.clear();
  }
}
