package org.ferry.proto;

import com.google.common.net.InetAddresses;
import java.net.InetSocketAddress;
import java.util.Objects;

/**
 * A host and port as people write them: {@code HOST:PORT}, with IPv6 hosts in brackets
 * ({@code [::1]:7443}). The one parser and printer of that form for addresses, bridge lines,
 * listen options and pluggable-transport output. Port 0 means "any" where a listener allows it.
 *
 * <p>The host is an IP literal, kept in its shortest form ({@code ::1}, not
 * {@code 0:0:0:0:0:0:0:1}; RFC 5952), or a host name, which nothing here resolves except
 * {@link #toSocketAddress}.
 */
public record HostPort(String host, int port) {
  public HostPort {
    host = checkHost(host);
    if (port < 0 || port > 65535) {
      throw new IllegalArgumentException("port out of range: " + port);
    }
  }

  /**
   * {@code host} as it is written in addresses: an IP literal in its shortest form (RFC 5952),
   * a name unchanged. Makes no lookup.
   *
   * @throws IllegalArgumentException if it is empty, has spaces or characters of URLs
   *     ({@code /#@[]}), or has a ':' without being an IPv6 literal
   */
  public static String checkHost(String host) {
    Objects.requireNonNull(host, "host");
    if (host.isEmpty() || host.chars().anyMatch(c -> c <= ' ' || c > '~' || "#/@[]".indexOf(c) >= 0)) {
      throw new IllegalArgumentException("invalid host: '" + host + "'");
    }
    if (InetAddresses.isInetAddress(host)) {
      return InetAddresses.toAddrString(InetAddresses.forString(host));
    }
    if (host.contains(":")) {
      throw new IllegalArgumentException("invalid host: '" + host + "' (neither an IPv6 address nor a name)");
    }
    return host;
  }

  /** True if {@code host} is an IPv4 or IPv6 literal, which needs no lookup. */
  public static boolean isIpLiteral(String host) {
    return InetAddresses.isInetAddress(host);
  }

  /**
   * A socket address made without any lookup: an IP literal as a resolved address, a name left
   * unresolved. This is what a proxy request needs: SOCKS5 sends the first as an IPv4/IPv6
   * address and the second as a domain name for the proxy to resolve (RFC 1928 section 5).
   */
  public InetSocketAddress withoutLookup() {
    return isIpLiteral(host)
        ? new InetSocketAddress(InetAddresses.forString(host), port)
        : InetSocketAddress.createUnresolved(host, port);
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

  /** {@code HOST:PORT}, with IPv6 hosts in brackets and in their shortest form. */
  public static String format(String host, int port) {
    String h = isIpLiteral(host) ? InetAddresses.toAddrString(InetAddresses.forString(host)) : host;
    return (h.contains(":") ? "[" + h + "]" : h) + ":" + port;
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
