package org.ferry.sdk.internal.dial;

import java.net.InetAddress;
import java.net.NetworkInterface;
import java.net.SocketException;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HexFormat;
import java.util.List;
import java.util.function.Supplier;

/**
 * Names the network this device is on, so that what worked at home is not assumed to work in a
 * café: a short hash of the device's own non-loopback addresses. It is never sent anywhere.
 */
final class NetworkId implements Supplier<String> {
  private static final long CACHE_NANOS = 30_000_000_000L;
  private String cached;
  private long cachedAt;

  @Override
  public synchronized String get() {
    long now = System.nanoTime();
    if (cached == null || now - cachedAt > CACHE_NANOS) {
      cached = compute();
      cachedAt = now;
    }
    return cached;
  }

  private static String compute() {
    List<String> parts = new ArrayList<>();
    try {
      for (NetworkInterface nif : Collections.list(NetworkInterface.getNetworkInterfaces())) {
        if (!nif.isUp() || nif.isLoopback()) {
          continue;
        }
        for (InetAddress a : Collections.list(nif.getInetAddresses())) {
          if (!a.isLinkLocalAddress()) {
            parts.add(a.getHostAddress());
          }
        }
      }
    } catch (SocketException e) {
      return "unknown";
    }
    Collections.sort(parts);
    try {
      byte[] h = MessageDigest.getInstance("SHA-256").digest(String.join(",", parts).getBytes(StandardCharsets.UTF_8));
      return HexFormat.of().formatHex(h, 0, 8);
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }
}
