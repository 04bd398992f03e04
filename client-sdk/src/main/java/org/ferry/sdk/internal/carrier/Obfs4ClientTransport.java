package org.ferry.sdk.internal.carrier;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.ferry.proto.HostPort;
import org.ferry.proto.ManagedTransport;

/**
 * The real {@code obfs4proxy}, run as a managed client transport. It offers a SOCKS5 port on
 * loopback; a connection through it to a bridge's address, with the bridge's {@code cert} and
 * {@code iat-mode} as the SOCKS username, is an obfs4 session to that bridge. A proxy set for
 * the client is handed to it as TOR_PT_PROXY.
 */
final class Obfs4ClientTransport implements AutoCloseable {
  private final ManagedTransport process;
  private final InetSocketAddress socks;

  private Obfs4ClientTransport(ManagedTransport process, InetSocketAddress socks) {
    this.process = process;
    this.socks = socks;
  }

  static Obfs4ClientTransport start(String executable, Path stateDir, Optional<ProxySettings> proxy)
      throws IOException {
    Map<String, String> env = new HashMap<>();
    env.put("TOR_PT_CLIENT_TRANSPORTS", "obfs4");
    proxy.ifPresent(p -> env.put("TOR_PT_PROXY", p.uri()));
    ManagedTransport pt;
    try {
      pt = ManagedTransport.start(executable, stateDir, false, "obfs4", env);
    } catch (ManagedTransport.NotInstalledException e) {
      throw new IOException(e.getMessage() + " (obfs4 bridges need the obfs4proxy package)", e);
    } catch (IOException e) {
      throw new IOException("obfs4proxy did not start: " + e.getMessage(), e);
    }
    // CMETHOD obfs4 socks5 127.0.0.1:PORT
    List<String> m = pt.method();
    if (m.size() < 3 || !m.get(1).equals("socks5")) {
      pt.close();
      throw new IOException("obfs4proxy offered no SOCKS5 port: " + m);
    }
    return new Obfs4ClientTransport(pt, HostPort.parse(m.get(2)).toSocketAddress());
  }

  InetSocketAddress socksAddress() {
    return socks;
  }

  boolean isAlive() {
    return process.isAlive();
  }

  @Override
  public void close() {
    process.close();
  }
}
