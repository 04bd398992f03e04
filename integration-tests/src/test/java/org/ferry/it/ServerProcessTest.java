package org.ferry.it;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.InputStream;
import java.io.OutputStream;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLSocket;
import javax.net.ssl.TrustManager;
import javax.net.ssl.X509TrustManager;
import org.ferry.proto.ServerAddress;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** `ferry server` as its own process: the ready line, probes, SIGTERM, and what it logs. */
class ServerProcessTest {
  private static final Pattern READY = Pattern.compile("ferry server ready: (\\S+)");

  @TempDir Path dir;

  @Test
  void serverStartsProbedStopsCleanlyOnSigtermAndLogsNothingAboutClients() throws Exception {
    Path data = dir.resolve("server");
    Process p = new ProcessBuilder(
            Path.of(System.getProperty("java.home"), "bin", "java").toString(),
            "-cp", System.getProperty("java.class.path"),
            "org.ferry.server.ServerMain", "--data", data.toString(), "--listen", "127.0.0.1:0")
        .redirectOutput(dir.resolve("stdout").toFile())
        .redirectError(dir.resolve("stderr").toFile())
        .start();
    try {
      await().atMost(Duration.ofSeconds(30)).until(() -> READY.matcher(read("stdout")).find());
      Matcher m = READY.matcher(read("stdout"));
      assertTrue(m.find());
      ServerAddress address = ServerAddress.parse(m.group(1));
      assertEquals(address.toString(), Files.readString(data.resolve("server-address")).strip());

      probe(address.port());

      // The real thing still works after the probes.
      Cli.ok(dir.resolve("a"), "init", "--server", address.toString());
      Cli.ok(dir.resolve("a"), "invite", "--name", "bob");

      p.destroy(); // SIGTERM
      assertTrue(p.waitFor(30, TimeUnit.SECONDS), "the server must stop on SIGTERM");
      String err = read("stderr");
      assertTrue(err.contains("ferry server stopped"), "no clean stop in:\n" + err);
      for (String forbidden : List.of("127.0.0.1", "Transport failed", "Hex dump", "Exception")) {
        assertFalse(err.contains(forbidden), "server log mentions '" + forbidden + "':\n" + err);
      }
    } finally {
      p.destroyForcibly();
    }
  }

  /** What a scanner might send: noise, plain HTTP, an HTTP/2 preface, TLS then garbage. */
  private static void probe(int port) throws Exception {
    byte[] noise = new byte[2000];
    new SecureRandom().nextBytes(noise);
    for (byte[] bytes : List.of(
        noise,
        "GET / HTTP/1.1\r\nHost: x\r\n\r\n".getBytes(StandardCharsets.US_ASCII),
        "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".getBytes(StandardCharsets.US_ASCII))) {
      try (Socket s = new Socket("127.0.0.1", port)) {
        s.setSoTimeout(2000);
        OutputStream o = s.getOutputStream();
        o.write(bytes);
        o.flush();
        readQuietly(s.getInputStream());
      }
    }
    SSLContext tls = SSLContext.getInstance("TLS");
    tls.init(null, new TrustManager[] {new TrustAll()}, new SecureRandom());
    try (SSLSocket s = (SSLSocket) tls.getSocketFactory().createSocket("127.0.0.1", port)) {
      s.setSoTimeout(2000);
      javax.net.ssl.SSLParameters params = s.getSSLParameters();
      params.setApplicationProtocols(new String[] {"h2"});
      s.setSSLParameters(params);
      s.startHandshake();
      s.getOutputStream().write("not http/2 at all\n".getBytes(StandardCharsets.US_ASCII));
      s.getOutputStream().flush();
      readQuietly(s.getInputStream());
    }
  }

  private static void readQuietly(InputStream in) {
    try {
      while (in.read(new byte[4096]) >= 0) {
        // drain until the server closes
      }
    } catch (java.io.IOException closedOrTimedOut) {
      // either is fine for a probe
    }
  }

  private String read(String name) throws java.io.IOException {
    return Files.readString(dir.resolve(name));
  }

  /** Trusts anything: this is the prober, not a client. */
  private static final class TrustAll implements X509TrustManager {
    @Override
    public void checkClientTrusted(java.security.cert.X509Certificate[] c, String a) {}

    @Override
    public void checkServerTrusted(java.security.cert.X509Certificate[] c, String a) {}

    @Override
    public java.security.cert.X509Certificate[] getAcceptedIssuers() {
      return new java.security.cert.X509Certificate[0];
    }
  }
}
