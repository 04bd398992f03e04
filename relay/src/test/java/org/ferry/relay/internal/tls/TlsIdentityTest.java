package org.ferry.relay.internal.tls;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.SecureRandom;
import org.ferry.proto.ServerAddress;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TlsIdentityTest {
  @TempDir Path dir;

  @Test
  void theKeyIsMadeOnceAndLoadedAfterwardsSoThePinnedFingerprintHolds() throws Exception {
    TlsIdentity first = TlsIdentity.loadOrCreate(dir, "server", "ferry-server", new SecureRandom());
    TlsIdentity again = TlsIdentity.loadOrCreate(dir, "server", "ferry-server", new SecureRandom());
    assertArrayEquals(
        ServerAddress.fingerprintOf(first.certificate().getPublicKey()),
        ServerAddress.fingerprintOf(again.certificate().getPublicKey()));
    assertEquals(first.privateKey(), again.privateKey());
  }

  @Test
  void theKeyFileIsReadableByItsOwnerOnly() throws Exception {
    TlsIdentity.loadOrCreate(dir, "server", "ferry-server", new SecureRandom());
    assertEquals("rw-------",
        PosixFilePermissions.toString(Files.getPosixFilePermissions(dir.resolve("server-key.pem"))));
  }

  @Test
  void aHalfMissingIdentityIsAnErrorNotASilentNewKey() throws Exception {
    TlsIdentity.loadOrCreate(dir, "server", "ferry-server", new SecureRandom());
    Files.delete(dir.resolve("server-cert.pem"));
    IOException e = assertThrows(IOException.class, () -> TlsIdentity.loadOrCreate(dir, "server", "ferry-server", new SecureRandom()));
    assertEquals(true, e.getMessage().contains("incomplete"));
  }
}
