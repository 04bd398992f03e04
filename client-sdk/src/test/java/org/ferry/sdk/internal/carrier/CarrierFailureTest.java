package org.ferry.sdk.internal.carrier;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.netty.handler.codec.http.DefaultHttpHeaders;
import io.netty.handler.codec.http.DefaultHttpResponse;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.handler.codec.http.HttpVersion;
import io.netty.handler.codec.http.websocketx.WebSocketClientHandshakeException;
import io.netty.handler.proxy.HttpProxyHandler;
import io.netty.handler.proxy.ProxyConnectException;
import io.netty.handler.ssl.NotSslRecordException;
import java.util.concurrent.CompletionException;
import org.junit.jupiter.api.Test;

/** Dial failures in words a user can act on: no Netty internals, hex dumps or addresses. */
class CarrierFailureTest {
  private static final String NETTY_PREFIX = "socks5, password, /127.0.0.1:1080 => 127.0.0.1:4433, ";

  private static void assertPlain(String m) {
    assertFalse(m.contains("socks5, ") || m.contains("http, ") || m.contains(" => "), "Netty wording: " + m);
    assertFalse(m.matches(".*[0-9a-f]{16,}.*"), "hex dump: " + m);
    assertFalse(m.contains("127.0.0.1"), "address: " + m);
  }

  @Test
  void socksRefusalsSayWhatTheProxyRefused() {
    String auth = CarrierFailure.of(new ProxyConnectException(NETTY_PREFIX + "authStatus: FAILURE(1)"), true).getMessage();
    assertEquals("the SOCKS5 proxy refused the user name or password (check --proxy)", auth);
    String connect = CarrierFailure.of(new ProxyConnectException(NETTY_PREFIX + "status: CONNECTION_REFUSED(5)"), true)
        .getMessage();
    assertEquals("the SOCKS5 proxy could not connect to it (connection refused)", connect);
    String method = CarrierFailure.of(new ProxyConnectException(
        "socks5, none, /127.0.0.1:1080 => 127.0.0.1:4433, unexpected authMethod: UNACCEPTED(255)"), true).getMessage();
    assertTrue(method.startsWith("the SOCKS5 proxy wants a way of logging in"), method);
    String timeout = CarrierFailure.of(new ProxyConnectException(NETTY_PREFIX + "timeout"), true).getMessage();
    assertEquals("the SOCKS5 proxy did not answer in time", timeout);
    for (String m : new String[] {auth, connect, method, timeout}) {
      assertPlain(m);
    }
  }

  @Test
  void anHttpProxyThatRefusesConnectIsNamedWithItsStatusLine() {
    String m = CarrierFailure.of(new HttpProxyHandler.HttpProxyConnectException(
        "http, none, /127.0.0.1:8888 => 127.0.0.1:4433, status: 403 Access violation", new DefaultHttpHeaders()), true)
        .getMessage();
    assertEquals("the HTTP proxy refused to connect to it (CONNECT answered 403 Access violation)", m);
    assertPlain(m);
    String auth = CarrierFailure.of(new HttpProxyHandler.HttpProxyConnectException(
        "http, basic, /127.0.0.1:8888 => 127.0.0.1:4433, status: 407 Proxy Authentication Required",
        new DefaultHttpHeaders()), true).getMessage();
    assertTrue(auth.startsWith("the HTTP proxy wants a user name and password"), auth);
  }

  @Test
  void aBlockPageIsNamedWithoutADumpOfIt() {
    String notTls = CarrierFailure.describe(new CompletionException(new NotSslRecordException(
        "not an SSL/TLS record: 3c68746d6c3e3c686561643e3c7469746c653e426c6f636b65643c2f7469746c653e")));
    assertEquals("answered without TLS (a block page or captive portal?)", notTls);
    String ws = CarrierFailure.describe(new WebSocketClientHandshakeException("Invalid handshake response getStatus: 200 OK",
        new DefaultHttpResponse(HttpVersion.HTTP_1_1, HttpResponseStatus.OK)));
    assertEquals("answered HTTP 200 OK instead of a WebSocket upgrade (a block page or captive portal?)", ws);
    String redirect = CarrierFailure.describe(new WebSocketClientHandshakeException("Invalid handshake response",
        new DefaultHttpResponse(HttpVersion.HTTP_1_1, new HttpResponseStatus(302, "<script>evil</script>"))));
    assertEquals("answered HTTP 302 Found instead of a WebSocket upgrade (a block page or captive portal?)", redirect);
  }

  @Test
  void aBridgeWhoseServerIsDownIsToldApartFromABlockedOne() {
    CarrierFailure down = CarrierFailure.httpAnswer(HttpResponseStatus.BAD_GATEWAY, "a WebSocket upgrade");
    assertEquals(CarrierFailure.Kind.SERVER_BEHIND_BRIDGE, down.kind());
    assertTrue(down.getMessage().startsWith("the bridge answered, but the server behind it did not"), down.getMessage());
    CarrierFailure upgrade = CarrierFailure.of(new WebSocketClientHandshakeException("Invalid handshake response",
        new DefaultHttpResponse(HttpVersion.HTTP_1_1, HttpResponseStatus.BAD_GATEWAY)), false);
    assertEquals(CarrierFailure.Kind.SERVER_BEHIND_BRIDGE, upgrade.kind());
    CarrierFailure blocked = CarrierFailure.of(new java.io.IOException("Connection reset by peer"), false);
    assertEquals(CarrierFailure.Kind.LINE, blocked.kind());
    assertEquals("the connection was reset (blocked?)", blocked.getMessage());
    assertEquals(CarrierFailure.Kind.LINE, CarrierFailure.kindOf(new java.net.ConnectException("Connection refused")));
  }

  @Test
  void textFromTheNetworkIsOneShortPrintableLine() {
    String m = CarrierFailure.plain("bad\u001b[2J\nsecond line " + "a".repeat(300));
    assertFalse(m.contains("\u001b") || m.contains("\n") || m.contains("second line"), m);
    assertTrue(m.length() <= 103, m);
  }
}
