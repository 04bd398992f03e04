package org.ferry.it;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyFactory;
import java.security.PrivateKey;
import java.security.Signature;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.security.spec.PKCS8EncodedKeySpec;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.ferry.proto.ServerAddress;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Two processes started at the same moment on one fresh data directory: exactly one runs, the
 * other refuses with one line naming the directory, and what the winner printed (fingerprint,
 * bridge secret) is what lies on disk, before and after a restart.
 */
class DoubleStartTest {
  private static final int TRIALS = 20;
  private static final Pattern SERVER_READY = Pattern.compile("ferry server ready: (\\S+)");
  private static final Pattern RELAY_READY = Pattern.compile("ferry relay ready: ");
  private static final Pattern WS_LINE = Pattern.compile("bridge: ws wss://\\S+/([A-Za-z0-9_-]+) pin=([A-Za-z0-9_-]+)");

  @TempDir Path dir;

  @Test
  void simultaneousServerStartsLeaveOneServerWhoseFingerprintIsTheKeyOnDisk() throws Exception {
    for (int trial = 0; trial < TRIALS; trial++) {
      Path data = dir.resolve("server-" + trial);
      List<String> args = List.of("org.ferry.server.ServerMain", "--data", data.toString(), "--listen", "127.0.0.1:0");
      try (Started pair = Started.twice(dir.resolve("run-s" + trial), args, SERVER_READY)) {
        Started.Run winner = pair.oneWinner();
        Matcher m = SERVER_READY.matcher(winner.stdout());
        assertTrue(m.find());
        ServerAddress printed = ServerAddress.parse(m.group(1));
        Path identity = data.resolve("identity");
        assertKeyPairOnDisk(identity, "server", printed.fingerprint(), trial);
        assertEquals(printed.toString(), Files.readString(data.resolve("server-address")).strip(),
            "trial " + trial + ": server-address is not what the winner printed");
        pair.assertLoserRefused(data);
      }
      // After a restart the same key is loaded: the pins clients took still hold.
      byte[] before = fingerprintOf(certificate(data.resolve("identity"), "server"));
      try (Started again = Started.once(dir.resolve("run-s" + trial + "-again"), args, SERVER_READY)) {
        Matcher m = SERVER_READY.matcher(again.runs.get(0).awaitOutcome().stdout());
        assertTrue(m.find());
        assertArrayEquals(before, ServerAddress.parse(m.group(1)).fingerprint(),
            "trial " + trial + ": the fingerprint changed across a restart");
      }
    }
  }

  @Test
  void simultaneousRelayStartsLeaveOneRelayWhosePinAndSecretAreOnDisk() throws Exception {
    for (int trial = 0; trial < TRIALS; trial++) {
      Path data = dir.resolve("relay-" + trial);
      List<String> args = List.of("org.ferry.relay.RelayMain", "--data", data.toString(),
          "--listen", "127.0.0.1:0", "--upstream", "127.0.0.1:9", "--carriers", "ws,poll");
      String printedLine;
      try (Started pair = Started.twice(dir.resolve("run-r" + trial), args, RELAY_READY)) {
        Started.Run winner = pair.oneWinner();
        Matcher m = WS_LINE.matcher(winner.stdout());
        assertTrue(m.find(), "no ws bridge line in: " + winner.stdout());
        printedLine = m.group(1) + " " + m.group(2);
        assertKeyPairOnDisk(data.resolve("identity"), "relay", Base64.getUrlDecoder().decode(m.group(2)), trial);
        assertEquals(m.group(1), Files.readString(data.resolve("bridge-secret")).strip(),
            "trial " + trial + ": the bridge secret on disk is not the one printed");
        assertTrue(Files.readString(data.resolve("bridges")).contains("/" + m.group(1) + " pin=" + m.group(2)),
            "trial " + trial + ": the bridges file is not what the winner printed");
        pair.assertLoserRefused(data);
      }
      try (Started again = Started.once(dir.resolve("run-r" + trial + "-again"), args, RELAY_READY)) {
        Matcher m = WS_LINE.matcher(again.runs.get(0).awaitOutcome().stdout());
        assertTrue(m.find());
        assertEquals(printedLine, m.group(1) + " " + m.group(2),
            "trial " + trial + ": the secret or pin changed across a restart");
      }
    }
  }

  /** The key and certificate on disk are one pair, and the certificate is the one printed. */
  private static void assertKeyPairOnDisk(Path identity, String name, byte[] printedFingerprint, int trial)
      throws Exception {
    X509Certificate cert = certificate(identity, name);
    assertArrayEquals(printedFingerprint, fingerprintOf(cert),
        "trial " + trial + ": the printed fingerprint is not the certificate's on disk");
    String pem = Files.readString(identity.resolve(name + "-key.pem"), StandardCharsets.US_ASCII);
    String b64 = pem.replaceAll("-----[A-Z ]+-----", "").replaceAll("\\s", "");
    PrivateKey key = KeyFactory.getInstance("EC")
        .generatePrivate(new PKCS8EncodedKeySpec(Base64.getDecoder().decode(b64)));
    byte[] probe = "which key?".getBytes(StandardCharsets.US_ASCII);
    Signature sign = Signature.getInstance("SHA256withECDSA");
    sign.initSign(key);
    sign.update(probe);
    byte[] signature = sign.sign();
    Signature verify = Signature.getInstance("SHA256withECDSA");
    verify.initVerify(cert.getPublicKey());
    verify.update(probe);
    assertTrue(verify.verify(signature), "trial " + trial + ": the key on disk does not match the certificate");
  }

  private static X509Certificate certificate(Path identity, String name) throws Exception {
    byte[] der = Files.readAllBytes(identity.resolve(name + "-cert.pem"));
    return (X509Certificate) CertificateFactory.getInstance("X.509").generateCertificate(new ByteArrayInputStream(der));
  }

  private static byte[] fingerprintOf(X509Certificate cert) {
    return ServerAddress.fingerprintOf(cert.getPublicKey());
  }

  /** Processes from this JVM's class path, stdout and stderr in files. */
  private static final class Started implements AutoCloseable {
    final List<Run> runs = new ArrayList<>();

    static Started twice(Path logs, List<String> args, Pattern ready) throws IOException {
      Started s = new Started();
      Files.createDirectories(logs);
      List<ProcessBuilder> builders = new ArrayList<>();
      for (int i = 0; i < 2; i++) {
        builders.add(builder(logs, "p" + i, args));
      }
      // Back to back, so that both reach the data directory at about the same moment.
      for (int i = 0; i < 2; i++) {
        s.runs.add(new Run(builders.get(i).start(), logs, "p" + i, ready));
      }
      return s;
    }

    static Started once(Path logs, List<String> args, Pattern ready) throws IOException {
      Started s = new Started();
      Files.createDirectories(logs);
      s.runs.add(new Run(builder(logs, "p0", args).start(), logs, "p0", ready));
      return s;
    }

    private static ProcessBuilder builder(Path logs, String name, List<String> args) {
      List<String> command = new ArrayList<>(List.of(
          Path.of(System.getProperty("java.home"), "bin", "java").toString(),
          "-cp", System.getProperty("java.class.path")));
      command.addAll(args);
      return new ProcessBuilder(command)
          .redirectOutput(logs.resolve(name + ".out").toFile())
          .redirectError(logs.resolve(name + ".err").toFile());
    }

    /** The one that became ready; fails unless exactly one did. */
    Run oneWinner() {
      List<Run> done = runs.stream().map(Run::awaitOutcome).toList();
      List<Run> winners = done.stream().filter(r -> r.exitCode().isEmpty()).toList();
      assertEquals(1, winners.size(), "exactly one process must run; outcomes: " + done);
      return winners.get(0);
    }

    /** The other exited non-zero with one line naming {@code data}. */
    void assertLoserRefused(Path data) {
      List<Run> done = runs.stream().map(Run::awaitOutcome).toList();
      Run loser = done.stream().filter(r -> r.exitCode().isPresent()).findFirst().orElseThrow();
      assertNotEquals(0, loser.exitCode().get(), "the loser must exit non-zero: " + loser);
      String err = loser.stderr().strip();
      assertEquals(1, err.lines().count(), "the loser must say why in one line: " + err);
      assertTrue(err.contains(data.toString()) && err.contains("in use"),
          "the loser's message must name the directory and say it is in use: " + err);
    }

    @Override
    public void close() {
      for (Run r : runs) {
        r.process.destroy();
      }
      for (Run r : runs) {
        try {
          if (!r.process.waitFor(30, TimeUnit.SECONDS)) {
            r.process.destroyForcibly().waitFor();
          }
        } catch (InterruptedException e) {
          r.process.destroyForcibly();
          Thread.currentThread().interrupt();
        }
      }
    }

    record Run(Process process, Path logs, String name, Pattern ready) {
      /** Waits until the process printed its ready line or exited. */
      Run awaitOutcome() {
        await().atMost(Duration.ofSeconds(90)).pollInterval(Duration.ofMillis(50))
            .until(() -> !process.isAlive() || ready.matcher(stdout()).find());
        if (!ready.matcher(stdout()).find()) {
          await().atMost(Duration.ofSeconds(10)).until(() -> !process.isAlive());
        }
        return this;
      }

      /** Empty while running (it won); the exit code once it has exited without being ready. */
      Optional<Integer> exitCode() {
        return ready.matcher(stdout()).find() ? Optional.empty() : Optional.of(process.exitValue());
      }

      String stdout() {
        return read(name + ".out");
      }

      String stderr() {
        return read(name + ".err");
      }

      private String read(String file) {
        try {
          return Files.readString(logs.resolve(file));
        } catch (IOException e) {
          return "";
        }
      }

      @Override
      public String toString() {
        return name + " " + (process.isAlive() ? "running" : "exit " + process.exitValue())
            + ", stdout: " + stdout().strip() + ", stderr: " + stderr().strip();
      }
    }
  }
}
