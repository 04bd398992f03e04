package org.ferry.it.censor;

import com.sun.net.httpserver.HttpServer;
import com.sun.net.httpserver.HttpsConfigurator;
import com.sun.net.httpserver.HttpsServer;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.cert.X509Certificate;
import java.util.concurrent.atomic.AtomicInteger;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;

/**
 * What a captive portal or a national block page answers in place of a relay: every request, on
 * every path and method, gets one fixed HTTP answer (200 with an HTML page, a 302 to a login
 * page, a 403). Over TLS it presents its own certificate, as such boxes do.
 */
public final class BlockPage implements AutoCloseable {
  private static final byte[] PAGE = """
      <!DOCTYPE html><html><head><title>Access denied</title></head>
      <body><h1>This site is blocked</h1><p>By order of the authority.</p></body></html>
      """.getBytes(StandardCharsets.UTF_8);

  private final HttpServer server;
  private final AtomicInteger requests = new AtomicInteger();

  private BlockPage(HttpServer server, int status) {
    this.server = server;
    server.createContext("/", exchange -> {
      requests.incrementAndGet();
      try (InputStream in = exchange.getRequestBody()) {
        in.readAllBytes();
      }
      exchange.getResponseHeaders().set("Content-Type", "text/html; charset=utf-8");
      if (status / 100 == 3) {
        exchange.getResponseHeaders().set("Location", "http://portal.example/login");
      }
      exchange.sendResponseHeaders(status, PAGE.length);
      try (OutputStream out = exchange.getResponseBody()) {
        out.write(PAGE);
      }
    });
    server.start();
  }

  /** Answers every plain HTTP request with {@code status} and an HTML page. */
  public static BlockPage http(int status) throws IOException {
    return new BlockPage(HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0), status);
  }

  /** The same over TLS, with {@code key} and {@code cert} (not the relay's). */
  public static BlockPage https(int status, PrivateKey key, X509Certificate cert) throws Exception {
    KeyStore ks = KeyStore.getInstance("PKCS12");
    ks.load(null, null);
    ks.setKeyEntry("portal", key, new char[0], new X509Certificate[] {cert});
    KeyManagerFactory kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
    kmf.init(ks, new char[0]);
    SSLContext ssl = SSLContext.getInstance("TLS");
    ssl.init(kmf.getKeyManagers(), null, null);
    HttpsServer s = HttpsServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
    s.setHttpsConfigurator(new HttpsConfigurator(ssl));
    return new BlockPage(s, status);
  }

  public int port() {
    return server.getAddress().getPort();
  }

  /** Requests answered so far. */
  public int requests() {
    return requests.get();
  }

  @Override
  public void close() {
    server.stop(0);
  }
}
