package org.ferry.sdk.internal.net;

import java.security.cert.CertificateException;
import java.security.cert.X509Certificate;
import org.ferry.proto.PinnedKeyTrust;
import org.ferry.proto.ServerAddress;

/**
 * Trusts exactly one server key: the one whose fingerprint the server address pins. Names,
 * dates and issuers in the certificate are ignored; the TLS handshake itself proves the
 * server holds the private key (see {@link PinnedKeyTrust}).
 */
public final class PinnedTrustManager extends PinnedKeyTrust {
  private final ServerAddress pinned;

  public PinnedTrustManager(ServerAddress pinned) {
    this.pinned = pinned;
  }

  /** The server's key is not the pinned one. */
  static final class PinMismatchException extends CertificateException {
    private static final long serialVersionUID = 1L;
    final String presented;

    PinMismatchException(String presented) {
      super("server key fingerprint mismatch");
      this.presented = presented;
    }
  }

  /** Whether {@code error} or one of its causes is a key that did not match its pin. */
  public static boolean isPinMismatch(Throwable error) {
    for (Throwable t = error; t != null; t = t.getCause()) {
      if (t instanceof PinMismatchException) {
        return true;
      }
    }
    return false;
  }

  @Override
  protected void checkServer(X509Certificate[] chain) throws CertificateException {
    if (chain == null || chain.length == 0) {
      throw new CertificateException("server sent no certificate");
    }
    if (!pinned.matches(chain[0].getPublicKey())) {
      String presented = new ServerAddress(
          pinned.host(), pinned.port(), ServerAddress.fingerprintOf(chain[0].getPublicKey()))
          .fingerprintText();
      throw new PinMismatchException(presented);
    }
  }

  @Override
  protected void checkClient(X509Certificate[] chain) throws CertificateException {
    throw new CertificateException("this client accepts no client certificates");
  }
}
