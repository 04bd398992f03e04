package org.ferry.server.internal.federation;

import java.security.cert.CertificateException;
import java.security.cert.X509Certificate;
import org.ferry.proto.PinnedKeyTrust;
import org.ferry.proto.ServerAddress;

/**
 * Trust for federation's mutual TLS. Peers have no CA: each is its key's fingerprint. A server
 * accepts any client certificate at the TLS layer (the Federation service reads the key and
 * decides; other services ignore it), and pins the destination's key when it calls a peer.
 */
final class PeerTrust extends PinnedKeyTrust {
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

  @Override
  protected void checkServer(X509Certificate[] chain) throws CertificateException {
    if (pinned == null) {
      throw new CertificateException("this trust manager checks clients only");
    }
    if (chain == null || chain.length == 0 || !pinned.matches(chain[0].getPublicKey())) {
      throw new CertificateException("the peer's key is not the one its address pins");
    }
  }

  @Override
  protected void checkClient(X509Certificate[] chain) throws CertificateException {
    if (chain == null || chain.length == 0) {
      throw new CertificateException("no client certificate");
    }
  }
}
