package org.ferry.relay;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.EnumSet;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import org.ferry.proto.BridgeLine;
import org.ferry.proto.PollFrames;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The relay's web port with an echo server upstream, spoken to as a plain HTTP client would. */
class RelayTest {
  @TempDir Path dir;
  private ServerSocket echo;
  private Thread echoThread;
  private Relay relay;
  private final HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();

  @BeforeEach
  void start() throws IOException {
    echo = new ServerSocket(0, 50, java.net.InetAddress.getLoopbackAddress());
    echoThread = new Thread(() -> {
      while (!echo.isClosed()) {
        try {
          Socket s = echo.accept();
          new Thread(() -> {
            try (s; InputStream in = s.getInputStream(); OutputStream out = s.getOutputStream()) {
              in.transferTo(out);
            } catch (IOException ignored) {
              // Closed by the relay.
            }
          }).start();
        } catch (IOException e) {
          return;
        }
      }
    });
    echoThread.start();
    relay = Relay.builder()
        .dataDirectory(dir)
        .listen(new InetSocketAddress("127.0.0.1", 0))
        .upstream(new InetSocketAddress("127.0.0.1", echo.getLocalPort()))
        .carriers(EnumSet.of(Carrier.WS, Carrier.POLL))
        .start();
  }

  @AfterEach
  void stop() throws Exception {
    relay.close();
    echo.close();
    echoThread.join();
  }

  private String base() {
    return "http://127.0.0.1:" + relay.webAddress().getPort();
  }

  private String secret() {
    return relay.bridgeLines().get(0).path();
  }

  private HttpResponse<byte[]> post(String path, byte[] body) throws Exception {
    return http.send(HttpRequest.newBuilder(URI.create(base() + path))
        .POST(HttpRequest.BodyPublishers.ofByteArray(body)).build(), HttpResponse.BodyHandlers.ofByteArray());
  }

  private static byte[] poll(byte[] session, long seq, int flags, int hold, String data) {
    byte[] d = data.getBytes(StandardCharsets.UTF_8);
    return ByteBuffer.allocate(PollFrames.REQUEST_HEADER + d.length)
        .put(session).putLong(seq).put((byte) flags).putShort((short) hold).put(d).array();
  }

  @Test
  void bridgeLinesNameBothCarriersWithTheSecretPathAndThePinAndAreSavedOwnerOnly() throws Exception {
    List<BridgeLine> lines = relay.bridgeLines();
    assertEquals(List.of(BridgeLine.Kind.WS, BridgeLine.Kind.POLL), lines.stream().map(BridgeLine::kind).toList());
    assertTrue(lines.stream().allMatch(l -> l.tls() && l.pin().isPresent() && l.path().length() > 16));
    assertEquals(lines.stream().map(l -> l + "\n").reduce("", String::concat), Files.readString(dir.resolve("bridges")));
    assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(dir.resolve("bridge-secret"))));
  }

  @Test
  void theHttpsCertificateNamesNothingThatPointsToFerry() throws Exception {
    javax.net.ssl.SSLContext tls = javax.net.ssl.SSLContext.getInstance("TLS");
    java.security.cert.X509Certificate[][] seen = new java.security.cert.X509Certificate[1][];
    tls.init(null, new javax.net.ssl.TrustManager[] {new javax.net.ssl.X509TrustManager() {
      @Override
      public void checkClientTrusted(java.security.cert.X509Certificate[] chain, String authType) {}

      @Override
      public void checkServerTrusted(java.security.cert.X509Certificate[] chain, String authType) {
        seen[0] = chain;
      }

      @Override
      public java.security.cert.X509Certificate[] getAcceptedIssuers() {
        return new java.security.cert.X509Certificate[0];
      }
    }}, null);
    try (javax.net.ssl.SSLSocket s = (javax.net.ssl.SSLSocket) tls.getSocketFactory()
        .createSocket("127.0.0.1", relay.webAddress().getPort())) {
      s.startHandshake();
    }
    String names = seen[0][0].getSubjectX500Principal() + " " + seen[0][0].getIssuerX500Principal();
    assertTrue(!names.toLowerCase(java.util.Locale.ROOT).contains("ferry"), names);
  }

  @Test
  void withoutTheSecretItIsAFreshNginx() throws Exception {
    HttpResponse<String> home = http.send(HttpRequest.newBuilder(URI.create(base() + "/")).build(),
        HttpResponse.BodyHandlers.ofString());
    assertEquals(200, home.statusCode());
    assertTrue(home.body().contains("Welcome to nginx!"));
    assertEquals("nginx", home.headers().firstValue("server").orElseThrow());
    for (String path : List.of("/ws", "/admin", secret() + "x", secret().toUpperCase(java.util.Locale.ROOT))) {
      assertEquals(404, http.send(HttpRequest.newBuilder(URI.create(base() + path)).build(),
          HttpResponse.BodyHandlers.ofString()).statusCode(), path);
    }
    assertEquals(404, http.send(HttpRequest.newBuilder(URI.create(base() + secret())).build(),
        HttpResponse.BodyHandlers.ofString()).statusCode(), "the secret path without an upgrade looks like any other");
    assertEquals(405, post("/upload", new byte[10]).statusCode());
  }

  @Test
  void pollingCarriesBytesBothWaysAndAnswersARetryWithTheSameResponse() throws Exception {
    byte[] session = new byte[16];
    new java.security.SecureRandom().nextBytes(session);
    HttpResponse<byte[]> opened = post(secret(), poll(session, 0, 0, 0, ""));
    assertEquals(200, opened.statusCode());
    assertArrayEquals(new byte[] {0}, opened.body());

    HttpResponse<byte[]> echoed = post(secret(), poll(session, 1, 0, 1000, "hello"));
    byte[] body = echoed.body();
    assertEquals(0, body[0]);
    assertEquals("hello", new String(body, 1, body.length - 1, StandardCharsets.UTF_8));
    assertArrayEquals(body, post(secret(), poll(session, 1, 0, 1000, "hello")).body(),
        "a resent request gets the same answer");

    assertArrayEquals(new byte[] {0}, post(secret(), poll(session, 2, 0, 300, "")).body(),
        "nothing more came back: the resent bytes did not go upstream twice");

    assertEquals(404, post(secret(), poll(session, 5, 0, 0, "")).statusCode(), "out of sequence");
    byte[] stranger = new byte[16];
    assertEquals(404, post(secret(), poll(stranger, 3, 0, 0, "")).statusCode(), "unknown session");

    HttpResponse<byte[]> closed = post(secret(), poll(session, 3, PollFrames.CLOSE, 0, ""));
    assertEquals(PollFrames.CLOSE, closed.body()[0]);
    assertEquals(0, relay.pollSessions());
  }

  private static final String SITE_ANSWER = "HTTP/1.1 200 OK\r\nContent-Length: 4\r\nConnection: close\r\n\r\nreal";

  /** A stand-in web server: records each request head it is sent, answers it, and hangs up. */
  private static void serveSite(ServerSocket site, BlockingQueue<String> seen) {
    while (!site.isClosed()) {
      try (Socket s = site.accept()) {
        InputStream in = s.getInputStream();
        StringBuilder head = new StringBuilder();
        for (int b; !head.toString().endsWith("\r\n\r\n") && (b = in.read()) >= 0; ) {
          head.append((char) b);
        }
        seen.add(head.toString());
        s.getOutputStream().write(SITE_ANSWER.getBytes(StandardCharsets.US_ASCII));
      } catch (IOException e) {
        return;
      }
    }
  }

  private static String exchange(InetSocketAddress to, String request) throws IOException {
    try (Socket s = new Socket()) {
      s.connect(to, 5000);
      s.setSoTimeout(10_000);
      s.getOutputStream().write(request.getBytes(StandardCharsets.US_ASCII));
      return new String(s.getInputStream().readAllBytes(), StandardCharsets.US_ASCII);
    }
  }

  @Test
  void withAFallbackOnlyCarrierRequestsAreTheRelaysAndTheRestReachesTheWebServerAsSentButTheSecret()
      throws Exception {
    BlockingQueue<String> seen = new LinkedBlockingQueue<>();
    try (ServerSocket site = new ServerSocket(0, 50, java.net.InetAddress.getLoopbackAddress())) {
      Thread siteThread = new Thread(() -> serveSite(site, seen));
      siteThread.start();
      try (Relay guarded = Relay.builder()
          .dataDirectory(dir.resolve("guarded"))
          .listen(new InetSocketAddress("127.0.0.1", 0))
          .upstream(new InetSocketAddress("127.0.0.1", echo.getLocalPort()))
          .carriers(EnumSet.of(Carrier.WS, Carrier.POLL))
          .fallback(new InetSocketAddress("127.0.0.1", site.getLocalPort()))
          .start()) {
        String other = "GET /about HTTP/1.1\r\nHost: example.org\r\nX-Odd:  spaces \r\n\r\n";
        assertEquals(SITE_ANSWER, exchange(guarded.webAddress(), other));
        assertEquals(other, seen.poll(10, java.util.concurrent.TimeUnit.SECONDS));

        String secretPath = guarded.bridgeLines().get(0).path();
        String notACarrier = "GET " + secretPath + " HTTP/1.0\r\n\r\n";
        assertEquals(SITE_ANSWER, exchange(guarded.webAddress(), notACarrier));
        String got = seen.poll(10, java.util.concurrent.TimeUnit.SECONDS);
        assertEquals(notACarrier.length(), got.length());
        assertFalse(got.contains(secretPath.substring(1)), "the web server never sees the secret: " + got);

        byte[] session = new byte[16];
        new java.security.SecureRandom().nextBytes(session);
        HttpResponse<byte[]> opened = http.send(
            HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + guarded.webAddress().getPort() + secretPath))
                .POST(HttpRequest.BodyPublishers.ofByteArray(poll(session, 0, 0, 0, ""))).build(),
            HttpResponse.BodyHandlers.ofByteArray());
        assertArrayEquals(new byte[] {0}, opened.body(), "polling is answered by the relay");
        // A body of unknown length goes in chunks, as some proxies send it.
        byte[] frame = poll(session, 1, 0, 1000, "hello");
        HttpResponse<byte[]> chunked = http.send(
            HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + guarded.webAddress().getPort() + secretPath))
                .POST(HttpRequest.BodyPublishers.ofInputStream(() -> new java.io.ByteArrayInputStream(frame))).build(),
            HttpResponse.BodyHandlers.ofByteArray());
        assertEquals("\0hello", new String(chunked.body(), StandardCharsets.UTF_8), "chunked polling too");
        assertTrue(seen.isEmpty(), "the web server saw nothing of it");
      } finally {
        site.close();
        siteThread.join();
      }
    }
  }
}
