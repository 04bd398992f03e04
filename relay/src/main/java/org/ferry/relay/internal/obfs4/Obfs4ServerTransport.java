package org.ferry.relay.internal.obfs4;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.ferry.proto.HostPort;
import org.ferry.proto.ManagedTransport;

/**
 * The real {@code obfs4proxy}, run as a managed server transport: it listens on the bridge port,
 * removes the obfs4 layer and hands plain bytes to our "ORPort", a loopback listener that
 * forwards to the server. Its keys live in its state directory, so the bridge line (with its
 * cert) stays the same across restarts.
 */
public final class Obfs4ServerTransport implements AutoCloseable {
  private final ManagedTransport process;
  private final InetSocketAddress bound;
  private final String arguments;

  private Obfs4ServerTransport(ManagedTransport process, InetSocketAddress bound, String arguments) {
    this.process = process;
    this.bound = bound;
    this.arguments = arguments;
  }

  /**
   * Starts obfs4proxy listening on {@code bind} and forwarding to {@code orPort}.
   *
   * @throws IOException if it cannot be started or reports an error; the message says which,
   *     and suggests installing obfs4proxy only when it is not installed
   */
  public static Obfs4ServerTransport start(
      String executable, Path stateDir, InetSocketAddress bind, InetSocketAddress orPort) throws IOException {
    ManagedTransport pt;
    try {
      pt = ManagedTransport.start(executable, stateDir, true, "obfs4", Map.of(
          "TOR_PT_SERVER_TRANSPORTS", "obfs4",
          "TOR_PT_SERVER_BINDADDR", "obfs4-" + HostPort.of(bind),
          "TOR_PT_ORPORT", HostPort.of(orPort).toString()));
    } catch (ManagedTransport.NotInstalledException e) {
      throw new IOException(e.getMessage() + ": install the obfs4proxy package, or leave obfs4 out of --carriers", e);
    } catch (IOException e) {
      throw new IOException("obfs4proxy is installed but did not start: " + e.getMessage()
          + "; check that " + (bind.getPort() == 0 ? "the obfs4 port" : HostPort.of(bind)) + " is free"
          + " (--obfs4-listen picks another) and that " + stateDir + " is writable, or leave obfs4 out of --carriers", e);
    }
    // SMETHOD obfs4 ADDRESS ARGS:cert=...,iat-mode=0
    List<String> m = pt.method();
    String cert = null;
    String iat = "0";
    if (m.size() >= 3 && m.get(2).startsWith("ARGS:")) {
      for (String arg : m.get(2).substring(5).split(",")) {
        if (arg.startsWith("cert=")) {
          cert = arg.substring(5);
        } else if (arg.startsWith("iat-mode=")) {
          iat = arg.substring(9);
        }
      }
    }
    if (cert == null) {
      pt.close();
      throw new IOException("obfs4proxy gave no cert: " + m);
    }
    return new Obfs4ServerTransport(pt, HostPort.parse(m.get(1)).toSocketAddress(), "cert=" + cert + " iat-mode=" + iat);
  }

  /** Where obfs4proxy listens. */
  public InetSocketAddress address() {
    return bound;
  }

  /** The {@code cert=... iat-mode=...} part of the bridge line. */
  public String arguments() {
    return arguments;
  }

  @Override
  public void close() {
    process.close();
  }
}
