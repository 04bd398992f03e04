package org.ferry.proto;

import java.net.Socket;
import java.security.cert.CertificateException;
import java.security.cert.X509Certificate;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.X509ExtendedTrustManager;

/**
 * TLS trust for Ferry's keys, which no CA vouches for: a server is its key's fingerprint
 * ({@link ServerAddress#matches}). Names, dates and issuers in certificates are ignored; the
 * handshake itself proves the peer holds the private key. JSSE's six check methods come down to
 * {@link #checkServer} and {@link #checkClient}. Extending {@link X509ExtendedTrustManager} keeps
 * the JDK from adding hostname checks, which mean nothing for a pinned key.
 */
public abstract class PinnedKeyTrust extends X509ExtendedTrustManager {
  /** Checks the certificate chain a server presented ({@code chain[0]} holds its key). */
  protected abstract void checkServer(X509Certificate[] chain) throws CertificateException;

  /** Checks the certificate chain a client presented (null or empty if it sent none). */
  protected abstract void checkClient(X509Certificate[] chain) throws CertificateException;

  @Override
  public final void checkServerTrusted(X509Certificate[] chain, String authType, SSLEngine engine)
      throws CertificateException {
    checkServer(chain);
  }

  @Override
  public final void checkServerTrusted(X509Certificate[] chain, String authType, Socket socket)
      throws CertificateException {
    checkServer(chain);
  }

  @Override
  public final void checkServerTrusted(X509Certificate[] chain, String authType) throws CertificateException {
    checkServer(chain);
  }

  @Override
  public final void checkClientTrusted(X509Certificate[] chain, String authType, SSLEngine engine)
      throws CertificateException {
    checkClient(chain);
  }

  @Override
  public final void checkClientTrusted(X509Certificate[] chain, String authType, Socket socket)
      throws CertificateException {
    checkClient(chain);
  }

  @Override
  public final void checkClientTrusted(X509Certificate[] chain, String authType) throws CertificateException {
    checkClient(chain);
  }

  @Override
  public final X509Certificate[] getAcceptedIssuers() {
    return new X509Certificate[0];
  }
}
