package org.ferry.it;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.net.ssl.SSLSocket;
import org.ferry.it.censor.Censor;
import org.ferry.it.censor.Censor.Rule;
import org.ferry.proto.BridgeLine;
import org.ferry.proto.ServerAddress;
import org.ferry.relay.Carrier;
import org.ferry.relay.Relay;
import org.ferry.sdk.FerryClient;
import org.ferry.sdk.MessageListener;
import org.ferry.sdk.ReceivedMessage;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A relay whose web port falls back to a real Debian nginx: dozens of probes, well-formed and
 * not, sent to the relay (in the clear and inside its TLS) get byte for byte what the same bytes
 * get from the nginx itself, Date apart; the secret path never reaches the nginx; and the
 * carriers still work through the same port.
 */
class RelayFallbackTest {
  /**
   * The nginx gives up on probes that stall sooner than its default, so that waiting for it stays
   * short; well after {@link #QUIET}, so that the two never race.
   */
  private static final int NGINX_HEADER_TIMEOUT_SECONDS = 4;
  /** A keep-alive answer is over when nothing more comes for this long. */
  private static final Duration QUIET = Duration.ofMillis(1500);
  /** Longest wait for the other side to close: the relay's sniffing time plus nginx's timeout, with room. */
  private static final Duration UNTIL_CLOSED = Duration.ofSeconds(20);
  /** Marks a pause between two parts of a probe. */
  private static final byte[] PAUSE = new byte[0];
  private static final Pattern DATE = Pattern.compile("(?m)^Date: [^\r\n]*");

  @TempDir Path dir;
  private final Closer closer = new Closer();
  private Path nginxDir;
  private int behindRelay;
  private int direct;

  /** How a probe ends: the client shuts its output, or waits for quiet, or for the server to close. */
  private enum End { HALF_CLOSE, QUIET, UNTIL_CLOSED }

  private record Probe(String name, End end, List<byte[]> parts) {}

  @BeforeEach
  void startNginx() throws Exception {
    String nginx = ExternalTools.require("nginx", "nginx-light");
    nginxDir = Files.createDirectories(dir.resolve("nginx"));
    Path tmp = Files.createDirectories(nginxDir.resolve("tmp"));
    tmp.toFile().setWritable(true, false);
    Path www = Files.createDirectories(nginxDir.resolve("www"));
    Files.writeString(www.resolve("index.html"), "<!DOCTYPE html>\n<html><body><h1>Welcome</h1></body></html>\n");
    behindRelay = ExternalProcess.freePort();
    direct = ExternalProcess.freePort();
    // The same site twice, on two ports with a log each: one behind the relay, one for comparing.
    String site = """
          server {
            listen 127.0.0.1:%d;
            access_log %s;
            root %s;
            index index.html;
            location / { try_files $uri $uri/ =404; }
          }
        """;
    Files.writeString(nginxDir.resolve("nginx.conf"), """
        worker_processes 1;
        daemon off;
        pid %1$s/nginx.pid;
        error_log %1$s/error.log warn;
        events { worker_connections 512; }
        http {
          sendfile on;
          tcp_nopush on;
          include /etc/nginx/mime.types;
          default_type application/octet-stream;
          server_tokens off;
          gzip on;
          client_header_timeout %3$ds;
          client_body_temp_path %2$s; proxy_temp_path %2$s; fastcgi_temp_path %2$s;
          uwsgi_temp_path %2$s; scgi_temp_path %2$s;
        %4$s%5$s}
        """.formatted(nginxDir, tmp, NGINX_HEADER_TIMEOUT_SECONDS,
            site.formatted(behindRelay, nginxDir.resolve("behind-relay.log"), www),
            site.formatted(direct, nginxDir.resolve("direct.log"), www)));
    closer.add(ExternalProcess.start(
        List.of(nginx, "-p", nginxDir.toString(), "-c", nginxDir.resolve("nginx.conf").toString()),
        nginxDir.resolve("stdout.log"), behindRelay));
  }

  @AfterEach
  void closeAll() {
    closer.close();
  }

  private Relay relay(RunningServer server) throws IOException {
    return closer.add(Relay.builder()
        .dataDirectory(dir.resolve("relay"))
        .listen(new InetSocketAddress("127.0.0.1", 0))
        .upstream(new InetSocketAddress("127.0.0.1", server.address().port()))
        .carriers(EnumSet.of(Carrier.WS, Carrier.POLL))
        .fallback(new InetSocketAddress("127.0.0.1", behindRelay))
        .start());
  }

  @Test
  void probesGetFromTheRelayExactlyWhatTheyGetFromNginxAndTheSecretNeverReachesIt() throws Exception {
    RunningServer server = closer.add(new RunningServer(dir.resolve("server")));
    Relay relay = relay(server);
    String secret = relay.bridgeLines().get(0).path();
    InetSocketAddress web = relay.webAddress();
    InetSocketAddress nginx = new InetSocketAddress("127.0.0.1", direct);

    List<Probe> plain = plainProbes(secret);
    List<Probe> tls = tlsProbes(secret);
    ExecutorService pool = Executors.newFixedThreadPool(8);
    List<String> differences = new ArrayList<>();
    try {
      List<Future<String>> verdicts = new ArrayList<>();
      for (Probe p : plain) {
        verdicts.add(pool.submit(() -> compare("plain " + p.name(), exchange(web, p, false), exchange(nginx, p, false))));
      }
      for (Probe p : tls) {
        verdicts.add(pool.submit(() -> compare("tls " + p.name(), exchange(web, p, true), exchange(nginx, p, false))));
      }
      for (Future<String> f : verdicts) {
        String d = f.get(2, TimeUnit.MINUTES);
        if (d != null) {
          differences.add(d);
        }
      }
    } finally {
      pool.shutdownNow();
    }
    int probes = plain.size() + tls.size();
    System.out.printf("relay fallback: %d of %d probes (%d in the clear, %d inside TLS) answered identically%n",
        probes - differences.size(), probes, plain.size(), tls.size());
    assertTrue(probes >= 30, "enough probes: " + probes);
    assertEquals(List.of(), differences, differences.size() + " of " + probes + " probes were answered differently");

    // nginx logs every request it saw, the secret path included where the probe had it.
    Path directLog = nginxDir.resolve("direct.log");
    Path relayLog = nginxDir.resolve("behind-relay.log");
    String token = secret.substring(1);
    await().atMost(Duration.ofSeconds(10)).until(() -> Files.readString(directLog).contains(token));
    await().atMost(Duration.ofSeconds(10)).until(() -> Files.readString(directLog).lines().count()
        == Files.readString(relayLog).lines().count());
    assertFalse(Files.readString(relayLog).contains(token), "the fallback never saw the secret");
    assertEquals(0, relay.pollSessions(), "no probe opened a polling session");
  }

  /** Probes in the clear: each goes byte for byte to the relay's web port and to nginx. */
  private static List<Probe> plainProbes(String secret) {
    String upgrade = "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
        + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
    byte[] noise = new byte[700];
    new Random(10).nextBytes(noise);
    List<Probe> p = new ArrayList<>();
    p.add(probe("GET /", End.QUIET, "GET / HTTP/1.1\r\nHost: example.org\r\n\r\n"));
    p.add(probe("GET /index.html", End.QUIET, "GET /index.html HTTP/1.1\r\nHost: example.org\r\n\r\n"));
    p.add(probe("GET /favicon.ico", End.QUIET, "GET /favicon.ico HTTP/1.1\r\nHost: example.org\r\n\r\n"));
    p.add(probe("GET /robots.txt", End.QUIET, "GET /robots.txt HTTP/1.1\r\nHost: example.org\r\n\r\n"));
    p.add(probe("HEAD /", End.QUIET, "HEAD / HTTP/1.1\r\nHost: example.org\r\n\r\n"));
    p.add(probe("OPTIONS *", End.QUIET, "OPTIONS * HTTP/1.1\r\nHost: example.org\r\n\r\n"));
    p.add(probe("HTTP/1.0", End.UNTIL_CLOSED, "GET / HTTP/1.0\r\n\r\n"));
    p.add(probe("HTTP/1.1 without Host", End.QUIET, "GET / HTTP/1.1\r\n\r\n"));
    p.add(probe("a bad version", End.QUIET, "GET / HTTP/7.3\r\nHost: x\r\n\r\n"));
    p.add(probe("a garbled version", End.QUIET, "GET / HTXP/1.1\r\nHost: x\r\n\r\n"));
    p.add(probe("HTTP/0.9", End.QUIET, "GET /\r\n"));
    p.add(probe("a long URI", End.QUIET, "GET /" + "a".repeat(10_000) + " HTTP/1.1\r\nHost: x\r\n\r\n"));
    p.add(probe("/../etc/passwd", End.QUIET, "GET /../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n"));
    p.add(probe("an unknown method", End.QUIET, "BREW / HTTP/1.1\r\nHost: x\r\n\r\n"));
    p.add(probe("a lowercase method", End.QUIET, "get / HTTP/1.1\r\nHost: x\r\n\r\n"));
    p.add(probe("pipelined keep-alive", End.QUIET,
        "GET / HTTP/1.1\r\nHost: x\r\n\r\nHEAD /robots.txt HTTP/1.1\r\nHost: x\r\n\r\nGET /index.html HTTP/1.1\r\nHost: x\r\n\r\n"));
    p.add(probe("pipelined, the last with Connection: close", End.UNTIL_CLOSED,
        "GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    p.add(probe("a request, then the client's FIN", End.HALF_CLOSE, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    p.add(probe("a bare newline", End.QUIET, "\n"));
    p.add(probe("a bare newline, then FIN", End.HALF_CLOSE, "\n"));
    p.add(probe("a lone CRLF, then FIN", End.HALF_CLOSE, "\r\n"));
    p.add(probe("blank lines before a request", End.QUIET, "\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    p.add(probe("an absolute URI", End.QUIET, "GET http://example.org/index.html HTTP/1.1\r\nHost: example.org\r\n\r\n"));
    p.add(probe("CONNECT", End.QUIET, "CONNECT example.org:443 HTTP/1.1\r\nHost: example.org:443\r\n\r\n"));
    p.add(probe("the HTTP/2 preface", End.QUIET, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"));
    p.add(probe("a header without a colon", End.QUIET, "GET / HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n"));
    p.add(probe("a space before a colon", End.QUIET, "GET / HTTP/1.1\r\nHost : x\r\n\r\n"));
    p.add(probe("a folded header", End.QUIET, "GET / HTTP/1.1\r\nHost: x\r\nX-A: b\r\n c\r\n\r\n"));
    p.add(probe("two Hosts", End.QUIET, "GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n"));
    p.add(probe("a huge header", End.QUIET, "GET / HTTP/1.1\r\nHost: x\r\nCookie: " + "c".repeat(12_000) + "\r\n\r\n"));
    p.add(probe("a NUL in the request line", End.QUIET, "GET /\u0000 HTTP/1.1\r\nHost: x\r\n\r\n"));
    p.add(probe("a chunked POST", End.QUIET,
        "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"));
    p.add(probe("a POST with Expect: 100-continue", End.QUIET,
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n", PAUSE, "hello"));
    p.add(probe("a head sent byte by byte", End.QUIET, bytesOneByOne("GET /robots.txt HTTP/1.1\r\nHost: x\r\n\r\n")));
    p.add(probe("slowloris: part of a head, a pause, then FIN", End.HALF_CLOSE,
        "GET / HTTP/1.1\r\nHost: x\r\n", PAUSE, "X-Slow: 1\r\n"));
    p.add(probe("part of a request line, then silence", End.UNTIL_CLOSED, "GET /"));
    p.add(probe("silence", End.UNTIL_CLOSED));
    p.add(new Probe("random bytes", End.QUIET, List.of(noise)));
    p.add(probe("the secret path with a wrong method", End.QUIET,
        "PUT " + secret + " HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"));
    p.add(probe("the secret path without an upgrade", End.QUIET, "GET " + secret + " HTTP/1.1\r\nHost: x\r\n\r\n"));
    p.add(probe("the secret path over HTTP/1.0", End.UNTIL_CLOSED, "GET " + secret + " HTTP/1.0\r\nHost: x\r\n" + upgrade + "\r\n"));
    p.add(probe("the secret path with a bad Host", End.QUIET, "GET " + secret + " HTTP/1.1\r\nHost: x/y\r\n" + upgrade + "\r\n"));
    p.add(probe("the secret path without Host", End.QUIET, "GET " + secret + " HTTP/1.1\r\n" + upgrade + "\r\n"));
    p.add(probe("the secret path with a query string", End.QUIET, "GET " + secret + "?q=1 HTTP/1.1\r\nHost: x\r\n" + upgrade + "\r\n"));
    p.add(probe("a prefix of the secret path", End.QUIET,
        "GET " + secret.substring(0, secret.length() - 3) + " HTTP/1.1\r\nHost: x\r\n" + upgrade + "\r\n"));
    p.add(probe("the secret path and more", End.QUIET, "GET " + secret + "x HTTP/1.1\r\nHost: x\r\n" + upgrade + "\r\n"));
    p.add(probe("the secret path with bare newlines", End.QUIET,
        ("GET " + secret + " HTTP/1.1\r\nHost: x\r\n" + upgrade + "\r\n").replace("\r\n", "\n")));
    p.add(probe("the secret path, a POST too large to poll", End.QUIET,
        "POST " + secret + " HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n", PAUSE, "x".repeat(1000)));
    p.add(probe("the secret path, then a head cut short by FIN", End.HALF_CLOSE,
        "GET " + secret + " HTTP/1.1\r\nHost: x\r\n"));
    p.add(probe("a decoy request, then a pipelined carrier request", End.QUIET,
        "GET / HTTP/1.1\r\nHost: x\r\n\r\nGET " + secret + " HTTP/1.1\r\nHost: x\r\n" + upgrade + "\r\n"));
    return p;
  }

  /** Probes inside the relay's TLS, compared with the same bytes sent to nginx in the clear. */
  private static List<Probe> tlsProbes(String secret) {
    byte[] helloInside = new byte[300];
    new Random(11).nextBytes(helloInside);
    helloInside[0] = 0x16;
    helloInside[1] = 0x03;
    helloInside[2] = 0x01;
    helloInside[3] = 0x01;
    helloInside[4] = 0x27;
    helloInside[5] = 0x01;
    List<Probe> p = new ArrayList<>();
    p.add(probe("GET /", End.QUIET, "GET / HTTP/1.1\r\nHost: example.org\r\n\r\n"));
    p.add(probe("HEAD /index.html", End.QUIET, "HEAD /index.html HTTP/1.1\r\nHost: example.org\r\n\r\n"));
    p.add(probe("HTTP/1.0", End.UNTIL_CLOSED, "GET / HTTP/1.0\r\n\r\n"));
    p.add(probe("pipelined keep-alive", End.QUIET,
        "GET /robots.txt HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    p.add(probe("Connection: close", End.UNTIL_CLOSED, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
    p.add(new Probe("TLS inside TLS", End.QUIET, List.of(helloInside)));
    p.add(probe("the HTTP/2 preface", End.QUIET, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"));
    p.add(probe("a bare newline", End.QUIET, "\n"));
    p.add(probe("a huge header", End.QUIET, "GET / HTTP/1.1\r\nHost: x\r\nCookie: " + "c".repeat(12_000) + "\r\n\r\n"));
    p.add(probe("a long URI", End.QUIET, "GET /" + "b".repeat(9_000) + " HTTP/1.1\r\nHost: x\r\n\r\n"));
    p.add(probe("the secret path with a wrong method", End.QUIET, "DELETE " + secret + " HTTP/1.1\r\nHost: x\r\n\r\n"));
    p.add(probe("the secret path over HTTP/1.0", End.UNTIL_CLOSED, "POST " + secret + " HTTP/1.0\r\nContent-Length: 40\r\n\r\n"
        + "x".repeat(40)));
    p.add(probe("part of a request line, then silence", End.UNTIL_CLOSED, "POST /"));
    return p;
  }

  private static Probe probe(String name, End end, Object... parts) {
    List<byte[]> bytes = new ArrayList<>();
    for (Object part : parts) {
      bytes.add(part == PAUSE ? PAUSE : ((String) part).getBytes(StandardCharsets.ISO_8859_1));
    }
    return new Probe(name, end, bytes);
  }

  private static Object[] bytesOneByOne(String text) {
    return text.chars().mapToObj(c -> String.valueOf((char) c)).toArray();
  }

  /** Returns a description of the difference, or null if both answers are the same, Date apart. */
  private static String compare(String what, String relay, String nginx) {
    String a = DATE.matcher(relay).replaceAll("Date: -");
    String b = DATE.matcher(nginx).replaceAll("Date: -");
    return a.equals(b) ? null : what + ":\n--- relay\n" + a + "\n--- nginx\n" + b;
  }

  /** Sends a probe and returns what came back, and how the connection ended. */
  private static String exchange(InetSocketAddress to, Probe probe, boolean tls) throws Exception {
    try (Socket raw = new Socket()) {
      raw.connect(to, 2000);
      Socket s = tls ? TrustingTls.context().getSocketFactory().createSocket(raw, to.getHostString(), to.getPort(), true) : raw;
      if (s instanceof SSLSocket ssl) {
        ssl.startHandshake();
      }
      ByteArrayOutputStream got = new ByteArrayOutputStream();
      OutputStream out = s.getOutputStream();
      InputStream in = s.getInputStream();
      String ending = "open";
      for (byte[] part : probe.parts()) {
        if (!ending.equals("open")) {
          break;
        }
        if (part == PAUSE) {
          ending = read(in, s, got, Duration.ofMillis(300));
        } else {
          out.write(part);
          out.flush();
        }
      }
      if (ending.equals("open")) {
        if (probe.end() == End.HALF_CLOSE) {
          s.shutdownOutput();
        }
        ending = read(in, s, got, probe.end() == End.QUIET ? QUIET : UNTIL_CLOSED);
      }
      return got.toString(StandardCharsets.ISO_8859_1) + "\n<" + ending + ">";
    }
  }

  /** Reads until the peer closes ("closed"), resets ("reset"), or is quiet for {@code quiet} ("open"). */
  private static String read(InputStream in, Socket s, ByteArrayOutputStream got, Duration quiet) throws IOException {
    s.setSoTimeout((int) quiet.toMillis());
    byte[] buf = new byte[8192];
    try {
      for (int n; (n = in.read(buf)) >= 0; ) {
        got.write(buf, 0, n);
      }
      return "closed";
    } catch (SocketTimeoutException e) {
      return "open";
    } catch (IOException e) {
      return "reset";
    }
  }


  @Test
  void webSocketAndPollingStillCarryMessagesThroughTheSamePort() throws Exception {
    RunningServer server = closer.add(new RunningServer(dir.resolve("server")));
    Relay relay = relay(server);
    Censor blocked = closer.add(Censor.start(new InetSocketAddress("127.0.0.1", server.address().port()))
        .block(Rule.BLOCK_PORT));
    ServerAddress censored = new ServerAddress("127.0.0.1", blocked.port(), server.address().fingerprint());
    BridgeLine ws = relay.bridgeLines().get(0);
    BridgeLine poll = relay.bridgeLines().get(1);
    BridgeLine plainPoll = new BridgeLine(poll.kind(), poll.host(), poll.port(), false, poll.path(), Optional.empty(), Map.of());
    assertEquals("ws", bobReachesAlice(censored, List.of(ws), "ws"));
    assertEquals("poll", bobReachesAlice(censored, List.of(poll), "poll-tls"));
    assertEquals("poll", bobReachesAlice(censored, List.of(plainPoll), "poll-plain"));
    assertTrue(blocked.blocked() > 0, "the server's own port was tried and refused");
  }

  @Test
  void aServerAcceptingCarriersItselfFallsBackToNginxWhenToldOnItsCommandLine() throws Exception {
    Path data = dir.resolve("server");
    Process p = new ProcessBuilder(
            Path.of(System.getProperty("java.home"), "bin", "java").toString(),
            "-cp", System.getProperty("java.class.path"),
            "org.ferry.server.ServerMain", "--data", data.toString(), "--listen", "127.0.0.1:0",
            "--carriers", "ws,poll", "--carrier-listen", "127.0.0.1:0", "--fallback", "127.0.0.1:" + behindRelay)
        .redirectOutput(dir.resolve("stdout").toFile())
        .redirectError(dir.resolve("stderr").toFile())
        .start();
    closer.add(p::destroyForcibly);
    Pattern ready = Pattern.compile("ferry server ready: (\\S+)");
    await().atMost(Duration.ofSeconds(30)).until(() -> ready.matcher(Files.readString(dir.resolve("stdout"))).find());
    String stdout = Files.readString(dir.resolve("stdout"));
    Matcher m = ready.matcher(stdout);
    assertTrue(m.find());
    ServerAddress address = ServerAddress.parse(m.group(1));
    BridgeLine ws = BridgeLine.parse(stdout.lines().filter(l -> l.startsWith("bridge: ws ")).findFirst()
        .orElseThrow().substring("bridge: ".length()));
    InetSocketAddress carriers = new InetSocketAddress("127.0.0.1", ws.port());
    InetSocketAddress nginx = new InetSocketAddress("127.0.0.1", direct);
    for (Probe probe : List.of(
        probe("GET /", End.QUIET, "GET / HTTP/1.1\r\nHost: example.org\r\n\r\n"),
        probe("the secret path without an upgrade", End.HALF_CLOSE, "GET " + ws.path() + " HTTP/1.1\r\nHost: x\r\n\r\n"))) {
      assertNull(compare(probe.name(), exchange(carriers, probe, false), exchange(nginx, probe, false)));
      assertNull(compare(probe.name(), exchange(carriers, probe, true), exchange(nginx, probe, false)));
    }
    Censor blocked = closer.add(Censor.start(new InetSocketAddress("127.0.0.1", address.port())).block(Rule.BLOCK_PORT));
    ServerAddress censored = new ServerAddress("127.0.0.1", blocked.port(), address.fingerprint());
    assertEquals("ws", bobReachesAlice(censored, List.of(ws), "ws"));
    p.destroy();
    assertTrue(p.waitFor(30, TimeUnit.SECONDS), "the server stops on SIGTERM");
    String log = Files.readString(dir.resolve("stderr"));
    assertFalse(log.contains(ws.path().substring(1)), "the log never shows the secret:\n" + log);
    assertFalse(log.contains("Exception"), log);
    assertFalse(Files.readString(nginxDir.resolve("behind-relay.log")).contains(ws.path().substring(1)));
  }

  /** Alice invites Bob; Bob's message reaches her over {@code lines}; returns the carrier Bob used. */
  private String bobReachesAlice(ServerAddress server, List<BridgeLine> lines, String tag) {
    FerryClient alice = closer.add(TestClients.open(dir, "alice-" + tag));
    FerryClient bob = closer.add(TestClients.open(dir, "bob-" + tag));
    List<String> texts = lines.stream().map(BridgeLine::toString).toList();
    alice.initialize(server, "", texts);
    bob.initialize(server, "", texts);
    bob.acceptInvitation(alice.createInvitation("bob").uri(), "alice");
    bob.send("alice", "through the fallback-guarded port");
    List<String> got = new ArrayList<>();
    alice.receive(Duration.ofMillis(500), new MessageListener() {
      @Override
      public void onMessage(ReceivedMessage m) {
        got.add(m.text());
      }
    });
    assertEquals(List.of("through the fallback-guarded port"), got);
    return bob.networkStatus().get(0).inUse().map(l -> l.split(" ")[0]).orElse("none");
  }
}
