package org.ferry.proto;

import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.security.PublicKey;
import java.util.Arrays;
import java.util.Base64;
import java.util.Objects;

/**
 * Where a Ferry server is and which key it must present: {@code HOST:PORT#FINGERPRINT}.
 *
 * <p>The fingerprint is the SHA-256 of the server's public key in X.509 SubjectPublicKeyInfo
 * encoding, written as unpadded base64url (43 characters). Clients pin TLS to it, so no CA or
 * domain name is needed. IPv6 hosts are written in brackets: {@code [::1]:7443#...}.
 */
public record ServerAddress(String host, int port, byte[] fingerprint) {
  private static final int FINGERPRINT_LENGTH = 32;

  public ServerAddress {
    Objects.requireNonNull(host, "host");
    Objects.requireNonNull(fingerprint, "fingerprint");
    if (host.isEmpty() || host.chars().anyMatch(c -> c <= ' ' || c == '#' || c == '/')) {
      throw new IllegalArgumentException("invalid host: '" + host + "'");
    }
    if (HostPort.isIpLiteral(host)) {
      // One spelling per address, so that equal addresses are equal (RFC 5952).
      host = HostPort.checkHost(host);
    }
    if (port < 1 || port > 65535) {
      throw new IllegalArgumentException("port out of range: " + port);
    }
    if (fingerprint.length != FINGERPRINT_LENGTH) {
      throw new IllegalArgumentException(
          "fingerprint must be " + FINGERPRINT_LENGTH + " bytes: " + fingerprint.length);
    }
    fingerprint = fingerprint.clone();
  }

  /** Parses {@code HOST:PORT#FINGERPRINT}; throws {@link IllegalArgumentException} saying why. */
  public static ServerAddress parse(String text) {
    Objects.requireNonNull(text, "text");
    int hash = text.indexOf('#');
    if (hash < 0) {
      throw new IllegalArgumentException(
          "server address needs a key fingerprint, HOST:PORT#FINGERPRINT: '" + text + "'");
    }
    HostPort at;
    try {
      at = HostPort.parse(text.substring(0, hash));
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException("server address needs HOST:PORT#FINGERPRINT (" + e.getMessage() + "): '" + text + "'");
    }
    String fp = text.substring(hash + 1);
    byte[] fingerprint;
    try {
      fingerprint = Base64.getUrlDecoder().decode(fp);
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException("invalid fingerprint in server address: '" + text + "'");
    }
    if (fingerprint.length != FINGERPRINT_LENGTH) {
      throw new IllegalArgumentException("invalid fingerprint in server address: '" + text + "'");
    }
    return new ServerAddress(at.host(), at.port(), fingerprint);
  }

  /** The fingerprint of a public key: SHA-256 over its X.509 SubjectPublicKeyInfo encoding. */
  public static byte[] fingerprintOf(PublicKey key) {
    try {
      return MessageDigest.getInstance("SHA-256").digest(key.getEncoded());
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("SHA-256 is missing from this JVM", e);
    }
  }

  @Override
  public byte[] fingerprint() {
    return fingerprint.clone();
  }

  /** Whether {@code key} is the key this address pins. Constant time. */
  public boolean matches(PublicKey key) {
    return MessageDigest.isEqual(fingerprint, fingerprintOf(key));
  }

  /**
   * Whether {@code other} pins the same key: the same server however its host is written.
   * Constant time.
   */
  public boolean sameKey(ServerAddress other) {
    return MessageDigest.isEqual(fingerprint, other.fingerprint);
  }

  public String fingerprintText() {
    return fingerprintText(fingerprint);
  }

  /** A key fingerprint as written in addresses: 43 characters of unpadded base64url. */
  public static String fingerprintText(byte[] fingerprint) {
    return Base64.getUrlEncoder().withoutPadding().encodeToString(fingerprint);
  }

  /** {@code HOST:PORT}, with IPv6 hosts in brackets. */
  public String hostPort() {
    return HostPort.format(host, port);
  }

  @Override
  public String toString() {
    return hostPort() + "#" + fingerprintText();
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof ServerAddress other
        && host.equals(other.host)
        && port == other.port
        && Arrays.equals(fingerprint, other.fingerprint);
  }

  @Override
  public int hashCode() {
    return Objects.hash(host, port, Arrays.hashCode(fingerprint));
  }
}
