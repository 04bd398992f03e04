package org.ferry.relay.internal.tls;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.PrivateKey;
import java.security.SecureRandom;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.security.spec.ECGenParameterSpec;
import java.security.spec.PKCS8EncodedKeySpec;
import java.time.Duration;
import java.time.Instant;
import java.util.Base64;
import java.util.Date;
import org.ferry.datadir.PrivateFiles;
import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.cert.X509v3CertificateBuilder;
import org.bouncycastle.cert.jcajce.JcaX509v3CertificateBuilder;
import org.bouncycastle.operator.OperatorCreationException;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;

/**
 * A long-term TLS key (EC P-256) and a self-signed certificate for it, kept in a directory as
 * {@code NAME-key.pem} and {@code NAME-cert.pem}. Clients pin the key's fingerprint, so the
 * certificate's names and dates carry no trust; it exists because TLS needs one. Servers use
 * it for their gRPC port ("server"), relays for their HTTPS port ("relay").
 */
public record TlsIdentity(PrivateKey privateKey, X509Certificate certificate) {

  /**
   * Loads the identity {@code name} from {@code dir}, or makes and saves one if there is none yet,
   * with {@code commonName} as the certificate's subject (anyone who opens TLS to it sees it).
   * The caller holds the data directory's lock ({@link org.ferry.datadir.DataDirectoryLock});
   * even so, the files are created only where none exist, never over another key.
   *
   * @throws java.nio.file.FileAlreadyExistsException if a key appeared while this one was made
   */
  public static TlsIdentity loadOrCreate(Path dir, String name, String commonName, SecureRandom random)
      throws IOException {
    String keyName = name + "-key.pem";
    String certName = name + "-cert.pem";
    Path keyFile = dir.resolve(keyName);
    Path certFile = dir.resolve(certName);
    if (Files.exists(keyFile) && Files.exists(certFile)) {
      return load(keyFile, certFile);
    }
    if (Files.exists(keyFile) != Files.exists(certFile)) {
      throw new IOException(
          name + " identity in " + dir + " is incomplete: one of " + keyName + " and "
              + certName + " is missing; restore it from backup (a new key would break every client's pin)");
    }
    Files.createDirectories(dir);
    TlsIdentity created = create(commonName, random);
    PrivateFiles.createNew(keyFile, pem("PRIVATE KEY", created.privateKey.getEncoded()));
    try {
      PrivateFiles.createNew(certFile, pem("CERTIFICATE", created.certificate.getEncoded()));
    } catch (GeneralSecurityException e) {
      throw new IOException("cannot encode certificate", e);
    }
    return created;
  }

  static TlsIdentity create(String commonName, SecureRandom random) {
    try {
      KeyPairGenerator gen = KeyPairGenerator.getInstance("EC");
      gen.initialize(new ECGenParameterSpec("secp256r1"), random);
      KeyPair pair = gen.generateKeyPair();
      Instant now = Instant.now();
      X500Name subject = new X500Name("CN=" + commonName);
      X509v3CertificateBuilder builder =
          new JcaX509v3CertificateBuilder(
              subject,
              new BigInteger(128, random),
              Date.from(now.minus(Duration.ofDays(1))),
              Date.from(now.plus(Duration.ofDays(365 * 100))),
              subject,
              pair.getPublic());
      byte[] der =
          builder.build(new JcaContentSignerBuilder("SHA256withECDSA").build(pair.getPrivate())).getEncoded();
      X509Certificate cert =
          (X509Certificate)
              CertificateFactory.getInstance("X.509").generateCertificate(new ByteArrayInputStream(der));
      return new TlsIdentity(pair.getPrivate(), cert);
    } catch (GeneralSecurityException | OperatorCreationException | IOException e) {
      throw new IllegalStateException("cannot create a TLS identity", e);
    }
  }

  private static TlsIdentity load(Path keyFile, Path certFile) throws IOException {
    try {
      byte[] keyDer = unpem(Files.readString(keyFile, StandardCharsets.US_ASCII), "PRIVATE KEY");
      PrivateKey key = KeyFactory.getInstance("EC").generatePrivate(new PKCS8EncodedKeySpec(keyDer));
      X509Certificate cert;
      try (var in = Files.newInputStream(certFile)) {
        cert = (X509Certificate) CertificateFactory.getInstance("X.509").generateCertificate(in);
      }
      return new TlsIdentity(key, cert);
    } catch (GeneralSecurityException | IllegalArgumentException e) {
      throw new IOException("cannot read TLS identity from " + keyFile.getParent() + ": " + e.getMessage(), e);
    }
  }

  private static String pem(String type, byte[] der) {
    return "-----BEGIN " + type + "-----\n"
        + Base64.getMimeEncoder(64, new byte[] {'\n'}).encodeToString(der)
        + "\n-----END " + type + "-----\n";
  }

  private static byte[] unpem(String text, String type) {
    String begin = "-----BEGIN " + type + "-----";
    String end = "-----END " + type + "-----";
    int b = text.indexOf(begin);
    int e = text.indexOf(end);
    if (b < 0 || e < b) {
      throw new IllegalArgumentException("not a PEM " + type);
    }
    return Base64.getMimeDecoder().decode(text.substring(b + begin.length(), e));
  }
}
