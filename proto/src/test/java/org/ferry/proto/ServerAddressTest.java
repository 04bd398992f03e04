package org.ferry.proto;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import org.junit.jupiter.api.Test;

class ServerAddressTest {
  private static final byte[] FP = new byte[32];

  static {
    Arrays.fill(FP, (byte) 7);
  }

  @Test
  void roundTripsThroughText() {
    ServerAddress a = new ServerAddress("127.0.0.1", 7443, FP);
    ServerAddress b = ServerAddress.parse(a.toString());
    assertEquals(a, b);
    assertArrayEquals(FP, b.fingerprint());
    assertEquals("127.0.0.1:7443", b.hostPort());
  }

  @Test
  void ipv6HostsUseBrackets() {
    ServerAddress a = new ServerAddress("::1", 7443, FP);
    assertTrue(a.toString().startsWith("[::1]:7443#"));
    assertEquals(a, ServerAddress.parse(a.toString()));
  }

  @Test
  void oneIpv6AddressHasOneSpellingSoItsSpellingsAreEqual() {
    ServerAddress longForm = new ServerAddress("0:0:0:0:0:0:0:1", 7443, FP);
    assertEquals("::1", longForm.host());
    assertEquals(new ServerAddress("::1", 7443, FP), longForm);
    assertEquals(longForm, ServerAddress.parse("[0:0:0:0:0:0:0:1]:7443#" + longForm.fingerprintText()));
  }

  @Test
  void rejectsAddressesWithoutFingerprintPortOrValidKey() {
    String fp = new ServerAddress("h", 1, FP).fingerprintText();
    assertThrows(IllegalArgumentException.class, () -> ServerAddress.parse("127.0.0.1:7443"));
    assertThrows(IllegalArgumentException.class, () -> ServerAddress.parse("127.0.0.1#" + fp));
    assertThrows(IllegalArgumentException.class, () -> ServerAddress.parse("h:99999#" + fp));
    assertThrows(IllegalArgumentException.class, () -> ServerAddress.parse("h:1#short"));
    assertThrows(IllegalArgumentException.class, () -> ServerAddress.parse("::1:1#" + fp));
  }

  @Test
  void bucketForPicksSmallestFittingSizeAndRefusesOversize() {
    assertEquals(1024, PaddingBuckets.bucketFor(1));
    assertEquals(1024, PaddingBuckets.bucketFor(1024));
    assertEquals(4096, PaddingBuckets.bucketFor(1025));
    assertEquals(65536, PaddingBuckets.bucketFor(65536));
    assertThrows(IllegalArgumentException.class, () -> PaddingBuckets.bucketFor(65537));
  }
}
