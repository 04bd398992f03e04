package org.ferry.relay;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.EnumSet;
import java.util.List;
import org.ferry.proto.BridgeLine;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** What a relay operator sees at start: bridge lines to hand out, or an error to act on. */
class RelayStartTest {
  @TempDir Path dir;

  private Relay.Builder relay(String obfs4proxy) {
    return Relay.builder()
        .dataDirectory(dir.resolve("relay"))
        .listen(new InetSocketAddress("127.0.0.1", 0))
        .upstream(new InetSocketAddress("127.0.0.1", 9))
        .carriers(EnumSet.of(Carrier.OBFS4))
        .obfs4proxy(obfs4proxy);
  }

  private Path script(String name, String body, String mode) throws IOException {
    Path p = dir.resolve(name);
    Files.writeString(p, "#!/bin/sh\n" + body + "\n");
    Files.setPosixFilePermissions(p, PosixFilePermissions.fromString(mode));
    return p;
  }

  @Test
  void aMissingObfs4proxyIsToldToBeInstalled() {
    IOException e = assertThrows(IOException.class, () -> relay(dir.resolve("no/such/obfs4proxy").toString()).start());
    assertTrue(e.getMessage().contains("is not installed") && e.getMessage().contains("install the obfs4proxy package"),
        e.getMessage());
  }

  @Test
  void anObfs4proxyThatFailsIsNotToldToBeInstalledAgain() throws Exception {
    for (Path failing : List.of(
        script("refuses", "echo 'SMETHOD-ERROR obfs4 listen tcp 127.0.0.1:1: bind: address already in use'", "rwx------"),
        script("exits", "exit 1", "rwx------"),
        script("not-executable", "exit 0", "rw-------"))) {
      IOException e = assertThrows(IOException.class, () -> relay(failing.toString()).start(), failing.toString());
      assertFalse(e.getMessage().contains("install the obfs4proxy package"), e.getMessage());
      assertTrue(e.getMessage().contains("obfs4proxy is installed but did not start"), e.getMessage());
    }
  }

  @Test
  void anIpv6RelayPrintsItsAddressInShortestForm() throws Exception {
    try (Relay r = Relay.builder()
        .dataDirectory(dir.resolve("v6"))
        .listen(new InetSocketAddress("::1", 0))
        .upstream(new InetSocketAddress("::1", 9))
        .carriers(EnumSet.of(Carrier.WS, Carrier.POLL))
        .start()) {
      for (BridgeLine line : r.bridgeLines()) {
        assertTrue(line.toString().contains("://[::1]:" + r.webAddress().getPort() + "/"), line.toString());
      }
      assertTrue(Files.readString(dir.resolve("v6/bridges")).contains("[::1]:"));
    }
    try (Relay r = Relay.builder()
        .dataDirectory(dir.resolve("v6-public"))
        .listen(new InetSocketAddress("127.0.0.1", 0))
        .publicHost("2001:DB8:0:0:0:0:0:1")
        .upstream(new InetSocketAddress("127.0.0.1", 9))
        .carriers(EnumSet.of(Carrier.WS))
        .start()) {
      assertEquals("ws wss://[2001:db8::1]:" + r.webAddress().getPort(),
          r.bridgeLines().get(0).toString().substring(0, r.bridgeLines().get(0).toString().indexOf('/', 10)));
    }
  }
}
