package org.ferry.sdk.internal.carrier;

import java.net.InetSocketAddress;
import java.net.URI;
import java.net.URISyntaxException;
import java.util.Locale;
import java.util.Optional;
import org.ferry.proto.HostPort;

/**
 * A proxy in front of every carrier: SOCKS5 (Tor, {@code ssh -D}) or an HTTP proxy (CONNECT for
 * TLS carriers and direct TCP; plain forwarding for {@code http://} polling lines). Host names
 * are resolved by the proxy, never locally, so a Tor user leaks no DNS. The password never
 * appears in a message or in {@link #toString}.
 */
public record ProxySettings(Type type, String host, int port, Optional<String> user, Optional<String> password) {
  public enum Type { SOCKS5, HTTP }

  /**
   * Parses {@code socks5://[USER:PASS@]HOST:PORT} or {@code http://[USER:PASS@]HOST:PORT}.
   *
   * @throws IllegalArgumentException if {@code text} is not such a URI; the message shows it with
   *     the password replaced by {@code ***}
   */
  public static ProxySettings parse(String text) {
    URI uri;
    try {
      uri = new URI(text.strip());
    } catch (URISyntaxException e) {
      throw new IllegalArgumentException("proxy must be socks5://HOST:PORT or http://HOST:PORT, got '" + redacted(text) + "'");
    }
    String scheme = uri.getScheme() == null ? "" : uri.getScheme().toLowerCase(Locale.ROOT);
    Type type = switch (scheme) {
      case "socks5", "socks5h" -> Type.SOCKS5;
      case "http" -> Type.HTTP;
      default -> throw new IllegalArgumentException(
          "proxy must be socks5://HOST:PORT or http://HOST:PORT, got '" + redacted(text) + "'");
    };
    if (uri.getHost() == null || uri.getPort() < 1) {
      throw new IllegalArgumentException("proxy needs HOST:PORT: '" + redacted(text) + "'");
    }
    Optional<String> user = Optional.empty();
    Optional<String> pass = Optional.empty();
    if (uri.getUserInfo() != null) {
      String[] up = uri.getUserInfo().split(":", 2);
      user = Optional.of(up[0]);
      pass = Optional.of(up.length > 1 ? up[1] : "");
    }
    return new ProxySettings(type, uri.getHost().replaceAll("^\\[|\\]$", ""), uri.getPort(), user, pass);
  }

  /**
   * {@code text} with whatever could be a password hidden: everything between the first
   * {@code :} after the user name and the last {@code @} before the host.
   */
  static String redacted(String text) {
    String t = text.strip();
    int at = t.lastIndexOf('@');
    if (at < 0) {
      return t;
    }
    int userStart = t.indexOf("://");
    userStart = userStart < 0 ? 0 : userStart + 3;
    int colon = t.indexOf(':', userStart);
    int hideFrom = colon >= 0 && colon < at ? colon + 1 : userStart;
    return t.substring(0, hideFrom) + "***" + t.substring(at);
  }

  /** Without the password. */
  @Override
  public String toString() {
    return type.name().toLowerCase(Locale.ROOT) + "://" + user.map(u -> u + ":***@").orElse("")
        + HostPort.format(host, port);
  }

  public InetSocketAddress address() {
    return new InetSocketAddress(host, port);
  }

  /** As obfs4proxy's TOR_PT_PROXY wants it. */
  public String uri() {
    String auth = user.map(u -> u + ":" + password.orElse("") + "@").orElse("");
    return type.name().toLowerCase(Locale.ROOT) + "://" + auth + HostPort.format(host, port);
  }
}
