package org.ferry.sdk.internal.carrier;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Optional;
import org.junit.jupiter.api.Test;

class ProxySettingsTest {
  @Test
  void aMalformedProxyNeverEchoesItsPassword() {
    for (String bad : new String[] {
        "socks5://alice:s3cret-pw@exa mple.org:1080",  // not a URI
        "socks5://alice:s3cret-pw@example.org",          // no port
        "https://alice:s3cret-pw@example.org:443",       // unknown scheme
        "alice:s3cret-pw@example.org:1080",              // no scheme
        "socks5://alice:s3cret-pw@@example.org:x",       // junk
    }) {
      IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> ProxySettings.parse(bad));
      assertFalse(e.getMessage().contains("s3cret-pw"), "password shown: " + e.getMessage());
      assertTrue(e.getMessage().startsWith("proxy "), e.getMessage());
    }
  }

  @Test
  void aParsedProxyDoesNotPrintItsPassword() {
    ProxySettings p = ProxySettings.parse("socks5://alice:s3cret-pw@127.0.0.1:1080");
    assertEquals(Optional.of("s3cret-pw"), p.password());
    assertFalse(p.toString().contains("s3cret-pw"), p.toString());
    assertTrue(p.toString().contains("127.0.0.1:1080"), p.toString());
  }

  @Test
  void theHostAndUserAreStillNamedInTheMessage() {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> ProxySettings.parse("socks5://alice:s3cret-pw@example.org"));
    assertTrue(e.getMessage().contains("example.org"), e.getMessage());
  }
}
