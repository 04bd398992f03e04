package org.ferry.proto;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class HostPortTest {
  @ParameterizedTest
  @ValueSource(strings = {"127.0.0.1:7443", "relay.example.org:443", "[2001:db8::7]:8443", "0.0.0.0:0"})
  void printsAsWrittenAndParsesBack(String text) {
    assertEquals(text, HostPort.parse(text).toString());
  }

  @org.junit.jupiter.api.Test
  void ipv6HostsLoseTheirBracketsInsideAndGetThemBackWhenPrinted() {
    HostPort hp = HostPort.parse("[::1]:7443");
    assertEquals("::1", hp.host());
    assertEquals(7443, hp.port());
    assertEquals("[::1]:7443", HostPort.format("::1", 7443));
  }

  @ParameterizedTest
  @ValueSource(strings = {"", "host", ":80", "host:", "::1:80", "host:http", "host:65536", "host:-1", "a b:80"})
  void malformedAddressesAreRefused(String text) {
    assertThrows(IllegalArgumentException.class, () -> HostPort.parse(text));
  }
}
