package org.ferry.sdk.internal.carrier;

import io.netty.channel.ConnectTimeoutException;
import io.netty.handler.codec.http.HttpResponse;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.handler.codec.http.websocketx.WebSocketClientHandshakeException;
import io.netty.handler.proxy.HttpProxyHandler;
import io.netty.handler.proxy.ProxyConnectException;
import io.netty.handler.ssl.NotSslRecordException;
import java.io.IOException;
import java.net.ConnectException;
import java.net.NoRouteToHostException;
import java.net.UnknownHostException;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.UnresolvedAddressException;
import java.util.Locale;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;
import javax.net.ssl.SSLException;
import org.ferry.sdk.internal.net.PinnedTrustManager;

/**
 * Why a carrier could not be opened, in words a user can act on: one clause, no Netty internals,
 * no hex dumps, no addresses (the caller names the line), no proxy credentials. {@link #kind}
 * tells the dialer whether the line itself is at fault.
 */
public final class CarrierFailure extends IOException {
  private static final long serialVersionUID = 1L;

  /** Whose fault it is. */
  public enum Kind {
    /** The line does not get through, or does not lead to the relay: it backs off. */
    LINE,
    /**
     * The bridge answered as a Ferry relay but the server behind it did not: the line itself
     * is healthy and is not backed off.
     */
    SERVER_BEHIND_BRIDGE,
  }

  private static final String BLOCK_PAGE = " (a block page or captive portal?)";
  /** What every line whose bridge answered for a dead server says. */
  static final String SERVER_BEHIND = "the bridge answered, but the server behind it did not";

  private final Kind kind;

  public CarrierFailure(Kind kind, String message) {
    super(message);
    this.kind = kind;
  }

  public Kind kind() {
    return kind;
  }

  /** The kind of {@code error}: {@link Kind#LINE} unless it is a {@link CarrierFailure} that says otherwise. */
  public static Kind kindOf(Throwable error) {
    return unwrap(error) instanceof CarrierFailure f ? f.kind : Kind.LINE;
  }

  /** The bridge answered a request with {@code status} where the relay's answer was expected. */
  static CarrierFailure httpAnswer(HttpResponseStatus status, String expected) {
    int code = status.code();
    String line = code + " " + HttpResponseStatus.valueOf(code).reasonPhrase();
    if (code == 502 || code == 503 || code == 504) {
      return new CarrierFailure(Kind.SERVER_BEHIND_BRIDGE, SERVER_BEHIND + " (HTTP " + line + ")");
    }
    return new CarrierFailure(Kind.LINE, "answered HTTP " + line + " instead of " + expected + BLOCK_PAGE);
  }

  /** {@code error} as a {@link CarrierFailure}, translated if it is not one yet. */
  static CarrierFailure of(Throwable error, boolean proxied) {
    Throwable t = unwrap(error);
    if (t instanceof CarrierFailure f) {
      return f;
    }
    for (Throwable c = t; c != null; c = c.getCause()) {
      if (c instanceof WebSocketClientHandshakeException ws && ws.response() != null
          && ws.response().status().code() != 101) {
        return httpAnswer(ws.response().status(), "a WebSocket upgrade");
      }
    }
    return new CarrierFailure(Kind.LINE, describe(t, proxied));
  }

  /** As {@link #of}, for a stream through obfs4proxy's SOCKS5 port: its refusals are about the bridge. */
  static CarrierFailure ofObfs4(Throwable error) {
    Throwable t = unwrap(error);
    if (t instanceof ProxyConnectException p) {
      String detail = proxyRefusal(p);
      return new CarrierFailure(Kind.LINE, detail.endsWith("did not answer in time")
          ? "the obfs4 handshake with the bridge did not complete in time"
          : "obfs4proxy could not reach the bridge or complete the obfs4 handshake with it");
    }
    return of(t, false);
  }

  /** A clause saying why {@code error} happened, for any failure met while dialing. */
  public static String describe(Throwable error) {
    Throwable t = unwrap(error);
    return t instanceof CarrierFailure ? t.getMessage() : describe(t, false);
  }

  private static String describe(Throwable t, boolean proxied) {
    if (PinnedTrustManager.isPinMismatch(t)) {
      return "its TLS key is not the one the line pins (a middlebox intercepting TLS?)";
    }
    for (Throwable c = t; c != null; c = c.getCause()) {
      if (c instanceof NotSslRecordException) {
        return "answered without TLS" + BLOCK_PAGE;
      }
      if (c instanceof WebSocketClientHandshakeException ws) {
        HttpResponse r = ws.response();
        return r != null && r.status().code() != 101
            ? httpAnswer(r.status(), "a WebSocket upgrade").getMessage()
            : "answered the WebSocket upgrade, but not as a relay does" + BLOCK_PAGE;
      }
      if (c instanceof ProxyConnectException p) {
        return proxyRefusal(p);
      }
    }
    if (t instanceof ConnectTimeoutException) {
      return proxied ? "the proxy did not answer in time" : "no answer in time";
    }
    if (t instanceof ConnectException) {
      return proxied ? "cannot connect to the proxy (connection refused)" : "connection refused";
    }
    if (t instanceof NoRouteToHostException) {
      return "no route to " + (proxied ? "the proxy" : "it");
    }
    if (t instanceof UnknownHostException || t instanceof UnresolvedAddressException) {
      return "its host name cannot be resolved";
    }
    if (t instanceof ClosedChannelException) {
      return proxied ? "the proxy closed the connection" : "the connection was closed before it answered";
    }
    if (t instanceof SSLException) {
      return "TLS with it failed: " + plain(t.getMessage());
    }
    if (t instanceof IllegalArgumentException && t.getMessage() != null) {
      // A line this client refuses to use as it stands (CarrierConnector says why, in full).
      return t.getMessage().lines().findFirst().orElse("");
    }
    String m = plain(t.getMessage());
    if (m.toLowerCase(Locale.ROOT).contains("connection reset")) {
      return "the connection was reset (blocked?)";
    }
    return m.isEmpty() ? t.getClass().getSimpleName() : m;
  }

  /**
   * Netty words a proxy's refusal as {@code "socks5, password, /PROXY => DEST, authStatus:
   * FAILURE(1)"}: only the part after the destination says what happened.
   */
  private static String proxyRefusal(ProxyConnectException p) {
    String m = p.getMessage() == null ? "" : p.getMessage();
    int arrow = m.indexOf(" => ");
    int comma = arrow < 0 ? -1 : m.indexOf(", ", arrow);
    String detail = comma < 0 ? "" : m.substring(comma + 2).strip();
    boolean http = p instanceof HttpProxyHandler.HttpProxyConnectException || m.startsWith("http,");
    String proxy = http ? "the HTTP proxy" : "the SOCKS5 proxy";
    if (detail.equals("timeout")) {
      return proxy + " did not answer in time";
    }
    if (detail.equals("disconnected")) {
      return proxy + " closed the connection";
    }
    if (detail.startsWith("authStatus:")) {
      return proxy + " refused the user name or password (check --proxy)";
    }
    if (detail.toLowerCase(Locale.ROOT).startsWith("unexpected authmethod")) {
      return proxy + " wants a way of logging in that was not given (check the user name and password in --proxy)";
    }
    if (detail.startsWith("status:")) {
      String status = plain(detail.substring("status:".length()));
      if (http) {
        return status.startsWith("407")
            ? proxy + " wants a user name and password (CONNECT answered " + status + ")"
            : proxy + " refused to connect to it (CONNECT answered " + status + ")";
      }
      // Socks5CommandStatus names, e.g. CONNECTION_REFUSED(5).
      String name = status.replaceAll("\\(.*", "").toLowerCase(Locale.ROOT).replace('_', ' ');
      return proxy + " could not connect to it (" + name + ")";
    }
    if (detail.equals("missing response") || detail.equals("too many responses")) {
      return proxy + " did not answer as an HTTP proxy does";
    }
    return proxy + " refused: " + plain(detail);
  }

  /** One printable line: no control characters, no long hex runs, not too long. */
  static String plain(String s) {
    if (s == null) {
      return "";
    }
    String line = s.lines().findFirst().orElse("").strip()
        .replaceAll("[^\\x20-\\x7e]", "?")
        .replaceAll("\\b[0-9a-fA-F]{16,}\\b", "...")
        .replaceAll(":? ?/?\\b\\d{1,3}(\\.\\d{1,3}){3}:\\d+", "");
    return line.length() > 100 ? line.substring(0, 100) + "..." : line;
  }

  private static Throwable unwrap(Throwable error) {
    Throwable t = error;
    while ((t instanceof CompletionException || t instanceof ExecutionException
        || t instanceof java.io.UncheckedIOException) && t.getCause() != null) {
      t = t.getCause();
    }
    return t;
  }
}
