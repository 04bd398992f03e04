package org.ferry.relay.internal.http;

import io.netty.buffer.ByteBuf;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Locale;
import org.ferry.proto.PollFrames;

/**
 * Tells, from the raw bytes a web connection opens with, whether they are a carrier's request:
 * a complete, well-formed head for the secret path ({@code GET} with a WebSocket upgrade, or a
 * polling {@code POST}) and nothing an HTTP parser could read two ways. Anything else belongs to
 * the fallback web server, and is judged at the byte level before any HTTP codec sees it.
 *
 * <p>Until a whole request line is in, the verdict depends only on public facts (whether the
 * bytes so far can begin {@code GET /} or {@code POST /}, and how many there are), so a prober
 * cannot learn the secret a byte at a time from when its connection is passed on; the whole line
 * is compared in constant time.
 */
public final class CarrierHead {
  /** Most bytes of a head that are waited for; past this, the connection is the fallback's. */
  public static final int MAX_HEAD = 8 * 1024;

  /** What the bytes so far say about a connection. */
  public enum Verdict {
    /** Could still be a carrier's request: wait for more bytes. */
    MORE,
    /** A complete, well-formed carrier request head: the relay serves this connection. */
    CARRIER,
    /** Not a carrier's request: the connection goes to the fallback. */
    FALLBACK
  }

  private static final byte[] GET = "GET /".getBytes(StandardCharsets.US_ASCII);
  private static final byte[] POST = "POST /".getBytes(StandardCharsets.US_ASCII);

  private final byte[] secret;
  private final byte[] filler;
  private final byte[] webSocketLine;
  private final byte[] pollLine;

  /**
   * @param secretPath the secret path, {@code /} and the secret
   * @param webSocket whether WebSocket upgrades are a carrier here
   * @param poll whether polling POSTs are a carrier here
   */
  public CarrierHead(byte[] secretPath, boolean webSocket, boolean poll) {
    if (secretPath.length < 2 || secretPath[0] != '/') {
      throw new IllegalArgumentException("secret path must be / and the secret");
    }
    this.secret = java.util.Arrays.copyOfRange(secretPath, 1, secretPath.length);
    byte[] random = new byte[secret.length];
    new SecureRandom().nextBytes(random);
    this.filler = Base64.getUrlEncoder().withoutPadding().encodeToString(random)
        .substring(0, secret.length).getBytes(StandardCharsets.US_ASCII);
    String path = new String(secretPath, StandardCharsets.US_ASCII);
    this.webSocketLine = webSocket ? ("GET " + path + " HTTP/1.1").getBytes(StandardCharsets.US_ASCII) : null;
    this.pollLine = poll ? ("POST " + path + " HTTP/1.1").getBytes(StandardCharsets.US_ASCII) : null;
  }

  /** Judges the readable bytes of {@code head} (not consumed), which a connection opened with. */
  public Verdict judge(ByteBuf head) {
    int start = head.readerIndex();
    int n = head.readableBytes();
    if (!startsLikeACarrier(head, start, n)) {
      return Verdict.FALLBACK;
    }
    int lineEnd = head.indexOf(start, start + Math.min(n, MAX_HEAD), (byte) '\n');
    if (lineEnd < 0) {
      return n >= MAX_HEAD ? Verdict.FALLBACK : Verdict.MORE;
    }
    if (lineEnd == start || head.getByte(lineEnd - 1) != '\r') {
      return Verdict.FALLBACK;
    }
    byte[] line = new byte[lineEnd - 1 - start];
    head.getBytes(start, line);
    boolean webSocket = webSocketLine != null && MessageDigest.isEqual(line, webSocketLine);
    boolean poll = pollLine != null && MessageDigest.isEqual(line, pollLine);
    if (!webSocket && !poll) {
      return Verdict.FALLBACK;
    }
    Headers headers = new Headers();
    int at = lineEnd + 1;
    int limit = start + Math.min(n, MAX_HEAD);
    while (true) {
      int end = head.indexOf(at, limit, (byte) '\n');
      if (end < 0) {
        return n >= MAX_HEAD ? Verdict.FALLBACK : Verdict.MORE;
      }
      if (end == at || head.getByte(end - 1) != '\r') {
        return Verdict.FALLBACK;
      }
      if (end - 1 == at) {
        return headers.fit(webSocket) ? Verdict.CARRIER : Verdict.FALLBACK;
      }
      if (!headers.add(head.toString(at, end - 1 - at, StandardCharsets.ISO_8859_1))) {
        return Verdict.FALLBACK;
      }
      at = end + 1;
    }
  }

  /**
   * Overwrites, in place, every whole occurrence of the secret in {@code bytes} with filler of the
   * same length (the same for the life of this object), so that a web server that is not the
   * relay's never sees, or logs, it. An occurrence split across two buffers is not found. Returns
   * {@code bytes}.
   */
  public ByteBuf hide(ByteBuf bytes) {
    int to = bytes.writerIndex();
    int i = bytes.indexOf(bytes.readerIndex(), to, secret[0]);
    while (i >= 0 && i + secret.length <= to) {
      if (matches(bytes, i)) {
        bytes.setBytes(i, filler);
        i += secret.length;
      } else {
        i++;
      }
      i = bytes.indexOf(i, to, secret[0]);
    }
    return bytes;
  }

  private boolean matches(ByteBuf bytes, int at) {
    for (int k = 0; k < secret.length; k++) {
      if (bytes.getByte(at + k) != secret[k]) {
        return false;
      }
    }
    return true;
  }

  /** Whether the first bytes are, so far, {@code GET /} or {@code POST /} of a carrier on here. */
  private boolean startsLikeACarrier(ByteBuf head, int start, int n) {
    return (webSocketLine != null && prefixOf(head, start, n, GET))
        || (pollLine != null && prefixOf(head, start, n, POST));
  }

  private static boolean prefixOf(ByteBuf head, int start, int n, byte[] expected) {
    for (int i = 0; i < Math.min(n, expected.length); i++) {
      if (head.getByte(start + i) != expected[i]) {
        return false;
      }
    }
    return true;
  }

  /** The header fields that decide whether a carrier's request is whole and unambiguous. */
  private static final class Headers {
    private final List<String> hosts = new ArrayList<>();
    private final List<String> contentLengths = new ArrayList<>();
    private final List<String> connection = new ArrayList<>();
    private final List<String> transferEncodings = new ArrayList<>();
    private final List<String> expectations = new ArrayList<>();
    private String upgrade;
    private String version;
    private String key;

    /** Takes one field line; false if it is malformed. */
    boolean add(String line) {
      int colon = line.indexOf(':');
      if (colon <= 0) {
        return false;
      }
      for (int i = 0; i < colon; i++) {
        if (!isTokenChar(line.charAt(i))) {
          return false;
        }
      }
      String value = line.substring(colon + 1).strip();
      for (int i = 0; i < value.length(); i++) {
        char c = value.charAt(i);
        if ((c < 0x20 && c != '\t') || c == 0x7f) {
          return false;
        }
      }
      switch (line.substring(0, colon).toLowerCase(Locale.ROOT)) {
        case "host" -> hosts.add(value);
        case "content-length" -> contentLengths.add(value);
        case "connection" -> connection.add(value);
        case "upgrade" -> upgrade = upgrade == null ? value : "";
        case "sec-websocket-version" -> version = version == null ? value : "";
        case "sec-websocket-key" -> key = key == null ? value : "";
        case "transfer-encoding" -> transferEncodings.add(value);
        case "expect" -> expectations.add(value);
        default -> { }
      }
      return true;
    }

    /**
     * Whether the head as a whole is a carrier's: a WebSocket upgrade, or else a polling POST
     * whose body is framed one way only, by a length that polling allows or (as some proxies
     * send it) by chunks.
     */
    boolean fit(boolean webSocket) {
      if (hosts.size() != 1 || !validHost(hosts.get(0)) || contentLengths.size() > 1) {
        return false;
      }
      long length = contentLengths.isEmpty() ? -1 : parseLength(contentLengths.get(0));
      if (!contentLengths.isEmpty() && length < 0) {
        return false;
      }
      if (webSocket) {
        return length <= 0
            && transferEncodings.isEmpty()
            && expectations.isEmpty()
            && "websocket".equalsIgnoreCase(upgrade)
            && connection.stream().flatMap(v -> java.util.Arrays.stream(v.split(",")))
                .anyMatch(t -> t.strip().equalsIgnoreCase("upgrade"))
            && "13".equals(version)
            && validKey(key);
      }
      boolean chunked = transferEncodings.size() == 1 && transferEncodings.get(0).equalsIgnoreCase("chunked");
      boolean sized = length >= PollFrames.REQUEST_HEADER && length <= PollFrames.REQUEST_HEADER + PollFrames.MAX_PAYLOAD;
      return upgrade == null
          && (expectations.isEmpty()
              || (expectations.size() == 1 && expectations.get(0).equalsIgnoreCase("100-continue")))
          && (chunked ? contentLengths.isEmpty() : transferEncodings.isEmpty() && sized);
    }

    private static boolean validHost(String host) {
      if (host.isEmpty() || host.length() > 255 || host.startsWith(".") || host.contains("..")) {
        return false;
      }
      for (int i = 0; i < host.length(); i++) {
        char c = host.charAt(i);
        boolean ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
            || c == '.' || c == '-' || c == '_' || c == ':' || c == '[' || c == ']';
        if (!ok) {
          return false;
        }
      }
      return true;
    }

    private static long parseLength(String text) {
      if (text.isEmpty() || text.length() > 9) {
        return -1;
      }
      for (int i = 0; i < text.length(); i++) {
        if (text.charAt(i) < '0' || text.charAt(i) > '9') {
          return -1;
        }
      }
      return Long.parseLong(text);
    }

    private static boolean validKey(String key) {
      try {
        return key != null && Base64.getDecoder().decode(key).length == 16;
      } catch (IllegalArgumentException e) {
        return false;
      }
    }

    private static boolean isTokenChar(char c) {
      return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
          || "!#$%&'*+-.^_`|~".indexOf(c) >= 0;
    }
  }
}
