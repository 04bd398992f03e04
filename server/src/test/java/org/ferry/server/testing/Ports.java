package org.ferry.it.load;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.util.Random;

/** Ports for servers that tests and drivers restart on the same address. */
public final class Ports {
  private Ports() {}

  /**
   * A free port on {@code host} between 20000 and 30000, below the kernel's ephemeral range
   * (from 32768 by default), so that it stays free for a later run unless someone binds it on
   * purpose: a port the kernel picked can be taken by an outgoing connection while its server is
   * down, and its restart then fails with "Address already in use".
   */
  public static int belowEphemeral(String host) {
    Random random = new Random();
    for (int tries = 0; tries < 200; tries++) {
      int candidate = 20000 + random.nextInt(10000);
      try (ServerSocket probe = new ServerSocket()) {
        probe.bind(new InetSocketAddress(host, candidate));
        return candidate;
      } catch (IOException taken) {
        // Try another.
      }
    }
    throw new IllegalStateException("no free port between 20000 and 30000 on " + host);
  }
}
