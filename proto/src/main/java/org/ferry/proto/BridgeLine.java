package org.ferry.proto;

import java.util.ArrayList;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * One way to reach a server: a carrier and its parameters, as servers and relays print them and
 * invitations carry them. The gRPC+TLS session to the server runs inside every carrier, pinned to
 * the server's key, so a bridge line grants no trust: a wrong one only fails to connect.
 *
 * <pre>
 * direct HOST:PORT                              plain TCP to another address of the server
 * ws wss://HOST:PORT/SECRET [pin=SPKI-SHA256]   WebSocket over HTTPS (ws:// behind a TLS proxy)
 * poll https://HOST:PORT/SECRET [pin=...]       HTTP polling (http:// through plain HTTP proxies)
 * obfs4 HOST:PORT cert=CERT iat-mode=N          obfs4 through obfs4proxy
 * </pre>
 *
 * <p>HOST is a name or an IP literal, IPv6 in brackets; IP literals are kept in their shortest
 * form (RFC 5952). Fields are separated by any run of blanks (spaces, tabs, no-break spaces),
 * an optional {@code bridge:} prefix is ignored, and a line is at most 1024 characters of ASCII.
 *
 * <p>{@code pin} is the unpadded base64url SHA-256 of the HTTPS endpoint's public key; without it
 * the endpoint's certificate is checked against the system's CAs. {@code cert} is obfs4proxy's
 * bridge certificate (base64 of 52 bytes: node id and public key) and {@code iat-mode} is 0, 1
 * or 2, as obfs4proxy defines them.
 *
 * <p>Lines from other versions are read with {@link #read}: a parameter this version does not
 * know is left out, and a line for a carrier it does not know is skipped, each with a note; a
 * known parameter with a bad value makes the line malformed.
 */
public record BridgeLine(Kind kind, String host, int port, boolean tls, String path,
    Optional<byte[]> pin, Map<String, String> params) {

  /** The carriers a bridge line can name. */
  public enum Kind {
    DIRECT, WS, POLL, OBFS4;

    public String word() {
      return name().toLowerCase(Locale.ROOT);
    }

    /** The parameters this version knows for the carrier, besides {@code pin}. */
    Set<String> params() {
      return this == OBFS4 ? Set.of(CERT, IAT_MODE) : Set.of();
    }
  }

  /**
   * A line as read from another version: the line, empty if its carrier is unknown here (a line
   * to skip), and notes on what was left out, naming the carrier, address and parameter but no
   * secret (paths, pins, certs), for a log or the person who gave the line.
   */
  public record Reading(Optional<BridgeLine> line, List<String> notes) {
    public Reading {
      Objects.requireNonNull(line, "line");
      notes = List.copyOf(notes);
    }
  }

  private static final int MAX_LENGTH = 1024;
  private static final String CERT = "cert";
  private static final String IAT_MODE = "iat-mode";
  private static final int CERT_BYTES = 52;
  /** Blanks that copying from documents and chat apps puts between words. */
  private static final Pattern BLANKS = Pattern.compile("[\\s\\p{Z}\\u200B\\u2060\\uFEFF]+");
  private static final Pattern KEY = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._-]*");
  /** What a carrier of a later version may be called; anything else is not a line at all. */
  private static final Pattern CARRIER = Pattern.compile("[A-Za-z][A-Za-z0-9_-]*");

  /**
   * @throws IllegalArgumentException if the host or port is invalid, a pin is not 32 bytes, or
   *     {@code params} are not exactly those the carrier takes with valid values (obfs4:
   *     {@code cert} and {@code iat-mode}; the others none)
   */
  public BridgeLine {
    Objects.requireNonNull(kind, "kind");
    Objects.requireNonNull(path, "path");
    host = HostPort.checkHost(host);
    pin = pin.map(byte[]::clone);
    params = Map.copyOf(params);
    if (port < 1 || port > 65535) {
      throw new IllegalArgumentException("port out of range: " + port);
    }
    if (pin.isPresent() && pin.get().length != 32) {
      throw new IllegalArgumentException("pin must be a SHA-256 (32 bytes), got " + pin.get().length);
    }
    if (!params.keySet().equals(kind.params())) {
      throw new IllegalArgumentException(kind.word() + " takes "
          + (kind.params().isEmpty() ? "no parameters" : "exactly cert= and iat-mode=") + ", got " + params.keySet());
    }
    params.forEach(BridgeLine::checkValue);
  }

  /**
   * Parses one line written for this version; notes from {@link #read} are dropped.
   *
   * @throws Malformed saying what is wrong, if the line is malformed or names a carrier this
   *     version does not know
   */
  public static BridgeLine parse(String line) {
    Reading r = read(line);
    return r.line().orElseThrow(() -> bad(line, "unknown carrier (known: direct, ws, poll, obfs4)"));
  }

  /**
   * Reads one line that may come from an older or newer version: unknown parameters are left
   * out and a line for an unknown carrier comes back empty, each with a note.
   *
   * @throws Malformed saying what is wrong (naming the parameter, for a bad value), if the
   *     line is malformed
   */
  public static Reading read(String line) {
    Objects.requireNonNull(line, "line");
    String text = BLANKS.matcher(line).replaceAll(" ").strip();
    if (text.startsWith("bridge:")) {
      text = text.substring("bridge:".length()).strip();
    }
    if (text.isEmpty() || text.length() > MAX_LENGTH || text.chars().anyMatch(c -> c < ' ' || c > '~')) {
      throw bad(line, "it is empty, too long or has characters that do not belong");
    }
    String[] words = text.split(" ");
    Kind kind;
    try {
      kind = Kind.valueOf(words[0].toUpperCase(Locale.ROOT));
    } catch (IllegalArgumentException e) {
      if (!CARRIER.matcher(words[0]).matches()) {
        throw bad(line, "it does not start with a carrier (direct, ws, poll, obfs4)");
      }
      String word = words[0].length() > 20 ? words[0].substring(0, 20) + "..." : words[0];
      return new Reading(Optional.empty(), List.of("skipped a bridge line for carrier '" + word
          + "', which this version does not know (known: direct, ws, poll, obfs4)"));
    }
    if (words.length < 2) {
      throw bad(line, "it names no address");
    }
    Map<String, String> params = new LinkedHashMap<>();
    for (int i = 2; i < words.length; i++) {
      int eq = words[i].indexOf('=');
      if (eq <= 0 || !KEY.matcher(words[i].substring(0, eq)).matches()) {
        throw bad(line, "'" + words[i] + "' is not KEY=VALUE");
      }
      if (params.put(words[i].substring(0, eq), words[i].substring(eq + 1)) != null) {
        throw bad(line, "'" + words[i].substring(0, eq) + "' is given twice");
      }
    }
    List<String> unknown = new ArrayList<>();
    Optional<byte[]> pin = Optional.empty();
    try {
      for (var it = params.entrySet().iterator(); it.hasNext(); ) {
        var p = it.next();
        boolean known = p.getKey().equals("pin") ? kind == Kind.WS || kind == Kind.POLL
            : kind.params().contains(p.getKey());
        if (!known) {
          unknown.add(p.getKey());
          it.remove();
        } else if (p.getKey().equals("pin")) {
          pin = Optional.of(decodePin(p.getValue()));
          it.remove();
        } else {
          checkValue(p.getKey(), p.getValue());
        }
      }
      BridgeLine parsed = switch (kind) {
        case DIRECT, OBFS4 -> {
          HostPort hp = HostPort.parse(words[1]);
          if (kind == Kind.OBFS4 && !params.keySet().equals(kind.params())) {
            throw bad(line, "obfs4 needs cert= and iat-mode=");
          }
          yield new BridgeLine(kind, hp.host(), hp.port(), false, "", pin, params);
        }
        case WS, POLL -> {
          String secure = kind == Kind.WS ? "wss://" : "https://";
          String plain = kind == Kind.WS ? "ws://" : "http://";
          boolean tls;
          String rest;
          if (words[1].startsWith(secure)) {
            tls = true;
            rest = words[1].substring(secure.length());
          } else if (words[1].startsWith(plain)) {
            tls = false;
            rest = words[1].substring(plain.length());
          } else {
            throw bad(line, kind.word() + " needs a " + secure + " or " + plain + " URL");
          }
          int slash = rest.indexOf('/');
          if (slash < 0 || slash == rest.length() - 1) {
            throw bad(line, "the URL has no secret path");
          }
          HostPort hp = HostPort.parse(rest.substring(0, slash));
          yield new BridgeLine(kind, hp.host(), hp.port(), tls, rest.substring(slash), pin, params);
        }
      };
      List<String> notes = unknown.stream().map(k -> parsed.shortForm() + ": left out parameter '"
          + (k.length() > 20 ? k.substring(0, 20) + "..." : k) + "', which this version does not know").toList();
      return new Reading(Optional.of(parsed), notes);
    } catch (Malformed e) {
      throw e;
    } catch (IllegalArgumentException e) {
      throw bad(line, e.getMessage());
    }
  }

  private static byte[] decodePin(String text) {
    try {
      return Base64.getUrlDecoder().decode(text);
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException("pin is not base64url");
    }
  }

  /** Checks a value that is handed to obfs4proxy; throws naming the parameter. */
  private static void checkValue(String key, String value) {
    switch (key) {
      case CERT -> {
        byte[] cert;
        try {
          cert = value.matches("[A-Za-z0-9+/]+={0,2}") ? Base64.getDecoder().decode(value) : null;
        } catch (IllegalArgumentException e) {
          cert = null;
        }
        if (cert == null || cert.length != CERT_BYTES) {
          throw new IllegalArgumentException("cert must be obfs4proxy's base64 certificate of "
              + CERT_BYTES + " bytes (70 characters), got " + value.length() + " characters");
        }
      }
      case IAT_MODE -> {
        if (!value.equals("0") && !value.equals("1") && !value.equals("2")) {
          String shown = value.length() > 10 ? value.substring(0, 10) + "..." : value;
          throw new IllegalArgumentException("iat-mode must be 0, 1 or 2, got '" + shown + "'");
        }
      }
      default -> throw new IllegalArgumentException("unknown parameter '" + key + "'");
    }
  }

  /** Host and port as written in a line, with IPv6 hosts in brackets. */
  public String hostPort() {
    return HostPort.format(host, port);
  }

  /** Carrier and address only, without secret path, pin or cert: for messages and screens. */
  public String shortForm() {
    return kind.word() + " " + hostPort();
  }

  @Override
  public Optional<byte[]> pin() {
    return pin.map(byte[]::clone);
  }

  @Override
  public String toString() {
    StringBuilder b = new StringBuilder(kind.word()).append(' ');
    switch (kind) {
      case DIRECT, OBFS4 -> b.append(hostPort());
      case WS -> b.append(tls ? "wss://" : "ws://").append(hostPort()).append(path);
      case POLL -> b.append(tls ? "https://" : "http://").append(hostPort()).append(path);
    }
    params.entrySet().stream().sorted(Map.Entry.comparingByKey())
        .forEach(e -> b.append(' ').append(e.getKey()).append('=').append(e.getValue()));
    pin.ifPresent(p -> b.append(" pin=").append(Base64.getUrlEncoder().withoutPadding().encodeToString(p)));
    return b.toString();
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof BridgeLine other && toString().equals(other.toString());
  }

  @Override
  public int hashCode() {
    return toString().hashCode();
  }

  private static Malformed bad(String line, String why) {
    return new Malformed(line, why);
  }

  /**
   * A line that cannot be read. Its message quotes the line (for the person who typed it);
   * {@link #reason} does not, for logs, where the line's secret path or cert must not go.
   */
  public static final class Malformed extends IllegalArgumentException {
    private static final long serialVersionUID = 1L;
    private final String reason;

    Malformed(String line, String reason) {
      super("not a bridge line (" + reason + "): '" + (line.length() > 80 ? line.substring(0, 80) + "..." : line) + "'");
      this.reason = reason;
    }

    /** What is wrong, without the line. */
    public String reason() {
      return reason;
    }
  }
}
