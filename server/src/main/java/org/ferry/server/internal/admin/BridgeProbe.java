package org.ferry.server.internal.admin;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.cert.X509Certificate;
import java.time.Duration;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLSocket;
import javax.net.ssl.TrustManager;
import javax.net.ssl.X509TrustManager;

/**
 * Whether one of the server's own carrier ports answers, asked from the server itself, within a
 * deadline. The web port (ws, poll) must complete a TLS handshake and answer an HTTP request with
 * a status line, as it answers any visitor (with {@code --fallback}, the fallback web server
 * answers: if it is down, the probe sees the connection closed, as a prober would). The obfs4
 * port answers nothing to anyone, so accepting the connection is all it can show.
 */
final class BridgeProbe {
  private BridgeProbe() {}

  /** An outcome: answered or not, how long it took, and what failed. */
  record Outcome(boolean answers, long millis, String detail) {}

  static Outcome web(InetSocketAddress port, Duration timeout) {
    long start = System.nanoTime();
    try (Socket tcp = new Socket()) {
      tcp.connect(reachable(port), (int) timeout.toMillis());
      tcp.setSoTimeout((int) timeout.toMillis());
      SSLContext tls = SSLContext.getInstance("TLS");
      // Our own port on this machine: nothing to authenticate, only whether it answers.
      tls.init(null, new TrustManager[] {new AnyCertificate()}, null);
      try (SSLSocket s = (SSLSocket) tls.getSocketFactory().createSocket(tcp, port.getHostString(), port.getPort(), true)) {
        s.startHandshake();
        OutputStream out = s.getOutputStream();
        out.write(("HEAD / HTTP/1.1\r\nHost: " + port.getHostString() + "\r\nConnection: close\r\n\r\n")
            .getBytes(StandardCharsets.US_ASCII));
        out.flush();
        InputStream in = s.getInputStream();
        byte[] head = in.readNBytes(12);
        String line = new String(head, StandardCharsets.US_ASCII);
        if (!line.startsWith("HTTP/1.")) {
          return new Outcome(false, elapsed(start), head.length == 0 ? "connection closed without an answer"
              : "no HTTP answer");
        }
        return new Outcome(true, elapsed(start), "HTTP" + line.substring(8).stripTrailing());
      }
    } catch (IOException | GeneralSecurityException e) {
      return new Outcome(false, elapsed(start), describe(e));
    }
  }

  static Outcome tcp(InetSocketAddress port, Duration timeout) {
    long start = System.nanoTime();
    try (Socket tcp = new Socket()) {
      tcp.connect(reachable(port), (int) timeout.toMillis());
      return new Outcome(true, elapsed(start), "port accepts connections");
    } catch (IOException e) {
      return new Outcome(false, elapsed(start), describe(e));
    }
  }

  /** A wildcard listen address is dialled on loopback. */
  private static InetSocketAddress reachable(InetSocketAddress bound) {
    InetAddress a = bound.getAddress();
    if (a == null || a.isAnyLocalAddress()) {
      return new InetSocketAddress(InetAddress.getLoopbackAddress(), bound.getPort());
    }
    return bound;
  }

  private static long elapsed(long start) {
    return (System.nanoTime() - start) / 1_000_000;
  }

  private static String describe(Exception e) {
    if (e instanceof java.net.SocketTimeoutException) {
      return "no answer in time";
    }
    if (e instanceof java.net.ConnectException) {
      return "connection refused";
    }
    return e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
  }

  private static final class AnyCertificate implements X509TrustManager {
    @Override
    public void checkClientTrusted(X509Certificate[] chain, String authType) {}

    @Override
    public void checkServerTrusted(X509Certificate[] chain, String authType) {}

    @Override
    public X509Certificate[] getAcceptedIssuers() {
      return new X509Certificate[0];
    }
  }
}
