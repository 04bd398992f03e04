package org.ferry.proto;

import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;

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
 * <p>{@code pin} is the unpadded base64url SHA-256 of the HTTPS endpoint's public key; without it
 * the endpoint's certificate is checked against the system's CAs.
 */
public record BridgeLine(Kind kind, String host, int port, boolean tls, String path,
    Optional<byte[]> pin, Map<String, String> params) {

  /** The carriers a bridge line can name. */
  public enum Kind {
    DIRECT, WS, POLL, OBFS4;

    public String word() {
      return name().toLowerCase(Locale.ROOT);
    }
  }

  private static final int MAX_LENGTH = 1024;

  public BridgeLine {
    Objects.requireNonNull(kind, "kind");
    Objects.requireNonNull(host, "host");
    Objects.requireNonNull(path, "path");
    pin = pin.map(byte[]::clone);
    params = Map.copyOf(params);
    if (host.isEmpty() || host.chars().anyMatch(c -> c <= ' ' || c == '/' || c == '#' || c == '@')) {
      throw new IllegalArgumentException("invalid host: '" + host + "'");
    }
    if (port < 1 || port > 65535) {
      throw new IllegalArgumentException("port out of range: " + port);
    }
    if (pin.isPresent() && pin.get().length != 32) {
      throw new IllegalArgumentException("pin must be a SHA-256 (32 bytes), got " + pin.get().length);
    }
  }

  /** Parses one line; throws {@link IllegalArgumentException} saying what is wrong. */
  public static BridgeLine parse(String line) {
    Objects.requireNonNull(line, "line");
    String text = line.strip();
    if (text.startsWith("bridge:")) {
      text = text.substring("bridge:".length()).strip();
    }
    if (text.isEmpty() || text.length() > MAX_LENGTH || text.chars().anyMatch(c -> c < ' ' || c > '~')) {
      throw bad(line, "it is empty, too long or has characters that do not belong");
    }
    String[] words = text.split(" +");
    Kind kind;
    try {
      kind = Kind.valueOf(words[0].toUpperCase(Locale.ROOT));
    } catch (IllegalArgumentException e) {
      throw bad(line, "unknown carrier '" + words[0] + "' (known: direct, ws, poll, obfs4)");
    }
    if (words.length < 2) {
      throw bad(line, "it names no address");
    }
    Map<String, String> params = new LinkedHashMap<>();
    for (int i = 2; i < words.length; i++) {
      int eq = words[i].indexOf('=');
      if (eq <= 0) {
        throw bad(line, "'" + words[i] + "' is not KEY=VALUE");
      }
      if (params.put(words[i].substring(0, eq), words[i].substring(eq + 1)) != null) {
        throw bad(line, "'" + words[i].substring(0, eq) + "' is given twice");
      }
    }
    Optional<byte[]> pin = Optional.empty();
    String pinText = params.remove("pin");
    if (pinText != null) {
      try {
        pin = Optional.of(Base64.getUrlDecoder().decode(pinText));
      } catch (IllegalArgumentException e) {
        throw bad(line, "pin is not base64url");
      }
    }
    try {
      return switch (kind) {
        case DIRECT, OBFS4 -> {
          if (pin.isPresent()) {
            throw bad(line, "pin belongs to ws and poll lines");
          }
          HostPort hp = HostPort.parse(words[1]);
          if (kind == Kind.OBFS4 && (!params.containsKey("cert") || !params.containsKey("iat-mode"))) {
            throw bad(line, "obfs4 needs cert= and iat-mode=");
          }
          if (kind == Kind.DIRECT && !params.isEmpty()) {
            throw bad(line, "direct takes no parameters");
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
          if (!params.isEmpty()) {
            throw bad(line, "unknown parameter '" + params.keySet().iterator().next() + "'");
          }
          HostPort hp = HostPort.parse(rest.substring(0, slash));
          yield new BridgeLine(kind, hp.host(), hp.port(), tls, rest.substring(slash), pin, params);
        }
      };
    } catch (IllegalArgumentException e) {
      if (e.getMessage() != null && e.getMessage().startsWith("not a bridge line")) {
        throw e;
      }
      throw bad(line, e.getMessage());
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

  private static IllegalArgumentException bad(String line, String why) {
    String shown = line.length() > 80 ? line.substring(0, 80) + "..." : line;
    return new IllegalArgumentException("not a bridge line (" + why + "): '" + shown + "'");
  }
}
