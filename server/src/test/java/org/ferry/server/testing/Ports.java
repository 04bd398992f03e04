package org.ferry.server.testing;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.util.Random;

/** Ports for servers that tests and drivers restart on the same address. */
public final class Ports {
  private Ports() {}

  /**
   * A port between 20000 and 30000 free on each of {@code hosts}, below the kernel's ephemeral
   * range (from 32768 by default), so that it stays free for a later run unless someone binds it
   * on purpose: a port the kernel picked can be taken by an outgoing connection while its server
   * is down, and its restart then fails with "Address already in use".
   *
   * @throws IllegalStateException if 200 random tries found none
   */
  public static int belowEphemeral(String... hosts) {
    Random random = new Random();
    for (int tries = 0; tries < 200; tries++) {
      int candidate = 20000 + random.nextInt(10000);
      if (freeOnAll(candidate, hosts)) {
        return candidate;
      }
    }
    throw new IllegalStateException("no free port between 20000 and 30000 on " + String.join(", ", hosts));
  }

  private static boolean freeOnAll(int port, String... hosts) {
    for (String host : hosts) {
      try (ServerSocket probe = new ServerSocket()) {
        probe.bind(new InetSocketAddress(host, port));
      } catch (IOException taken) {
        return false;
      }
    }
    return true;
  }
}
