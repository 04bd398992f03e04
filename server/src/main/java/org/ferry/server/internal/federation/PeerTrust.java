package org.ferry.server.internal.federation;

import java.net.Socket;
import java.security.cert.CertificateException;
import java.security.cert.X509Certificate;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.X509ExtendedTrustManager;
import org.ferry.proto.ServerAddress;

/**
 * Trust for federation's mutual TLS. Peers have no CA: each is its key's fingerprint. A server
 * accepts any client certificate at the TLS layer (the Federation service reads the key and
 * decides; other services ignore it), and pins the destination's key when it calls a peer.
 * Extending {@link X509ExtendedTrustManager} keeps the JDK from adding hostname checks.
 */
final class PeerTrust extends X509ExtendedTrustManager {
  /** Pins nothing on the server side; as a client, refuses any key but {@code pinned}'s. */
  private final ServerAddress pinned;

  private PeerTrust(ServerAddress pinned) {
    this.pinned = pinned;
  }

  /** For the server's port: any client certificate (or none) gets through TLS. */
  static PeerTrust anyClient() {
    return new PeerTrust(null);
  }

  /** For calls to {@code peer}: only the key its address pins. */
  static PeerTrust pinning(ServerAddress peer) {
    return new PeerTrust(peer);
  }

  private void checkServer(X509Certificate[] chain) throws CertificateException {
    if (pinned == null) {
      throw new CertificateException("this trust manager checks clients only");
    }
    if (chain == null || chain.length == 0 || !pinned.matches(chain[0].getPublicKey())) {
      throw new CertificateException("the peer's key is not the one its address pins");
    }
  }

  private static void checkClient(X509Certificate[] chain) throws CertificateException {
    if (chain == null || chain.length == 0) {
      throw new CertificateException("no client certificate");
    }
  }

  @Override
  public void checkServerTrusted(X509Certificate[] chain, String authType, SSLEngine engine)
      throws CertificateException {
    checkServer(chain);
  }

  @Override
  public void checkServerTrusted(X509Certificate[] chain, String authType, Socket socket)
      throws CertificateException {
    checkServer(chain);
  }

  @Override
  public void checkServerTrusted(X509Certificate[] chain, String authType) throws CertificateException {
    checkServer(chain);
  }

  @Override
  public void checkClientTrusted(X509Certificate[] chain, String authType, SSLEngine engine)
      throws CertificateException {
    checkClient(chain);
  }

  @Override
  public void checkClientTrusted(X509Certificate[] chain, String authType, Socket socket)
      throws CertificateException {
    checkClient(chain);
  }

  @Override
  public void checkClientTrusted(X509Certificate[] chain, String authType) throws CertificateException {
    checkClient(chain);
  }

  @Override
  public X509Certificate[] getAcceptedIssuers() {
    return new X509Certificate[0];
  }
}
