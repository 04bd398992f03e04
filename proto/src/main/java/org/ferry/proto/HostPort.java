package org.ferry.proto;

import java.net.InetSocketAddress;
import java.util.Objects;

/**
 * A host and port as people write them: {@code HOST:PORT}, with IPv6 hosts in brackets
 * ({@code [::1]:7443}). The one parser and printer of that form for addresses, bridge lines,
 * listen options and pluggable-transport output. Port 0 means "any" where a listener allows it.
 */
public record HostPort(String host, int port) {
  public HostPort {
    Objects.requireNonNull(host, "host");
    if (host.isEmpty() || host.chars().anyMatch(c -> c <= ' ' || c == '#' || c == '/' || c == '@')) {
      throw new IllegalArgumentException("invalid host: '" + host + "'");
    }
    if (port < 0 || port > 65535) {
      throw new IllegalArgumentException("port out of range: " + port);
    }
  }

  /** Parses {@code HOST:PORT}; throws {@link IllegalArgumentException} saying what is wrong. */
  public static HostPort parse(String text) {
    Objects.requireNonNull(text, "text");
    int colon = text.lastIndexOf(':');
    if (colon <= 0 || colon == text.length() - 1) {
      throw new IllegalArgumentException("address must be HOST:PORT: '" + text + "'");
    }
    String host = text.substring(0, colon);
    if (host.startsWith("[") && host.endsWith("]")) {
      host = host.substring(1, host.length() - 1);
    } else if (host.contains(":")) {
      throw new IllegalArgumentException("IPv6 hosts must be in brackets: '" + text + "'");
    }
    int port;
    try {
      port = Integer.parseInt(text.substring(colon + 1));
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException("invalid port: '" + text + "'");
    }
    return new HostPort(host, port);
  }

  /** The host (as given, not resolved) and port of a socket address. */
  public static HostPort of(InetSocketAddress address) {
    return new HostPort(address.getHostString(), address.getPort());
  }

  /** {@code HOST:PORT}, with IPv6 hosts in brackets. */
  public static String format(String host, int port) {
    return (host.contains(":") ? "[" + host + "]" : host) + ":" + port;
  }

  /** A socket address for it; resolving a name, if it is one, happens here. */
  public InetSocketAddress toSocketAddress() {
    return new InetSocketAddress(host, port);
  }

  @Override
  public String toString() {
    return format(host, port);
  }
}
