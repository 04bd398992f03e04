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
  @org.junit.jupiter.params.provider.CsvSource({
      "[0:0:0:0:0:0:0:1]:7443, [::1]:7443", "[2001:DB8:0:0:1:0:0:1]:1, [2001:db8::1:0:0:1]:1",
      "[::ffff:7f00:1]:80, 127.0.0.1:80"})
  void ipv6HostsArePrintedInTheirShortestForm(String text, String expected) {
    assertEquals(expected, HostPort.parse(text).toString());
    HostPort hp = HostPort.parse(text);
    assertEquals(expected, HostPort.format(hp.host(), hp.port()));
    assertEquals(expected, HostPort.of(new java.net.InetSocketAddress(text.substring(1, text.lastIndexOf(']')), hp.port())).toString());
  }

  @org.junit.jupiter.api.Test
  void withoutLookupGivesAddressesForLiteralsAndLeavesNamesUnresolved() {
    java.net.InetSocketAddress v6 = HostPort.parse("[::1]:80").withoutLookup();
    org.junit.jupiter.api.Assertions.assertFalse(v6.isUnresolved());
    org.junit.jupiter.api.Assertions.assertTrue(v6.getAddress() instanceof java.net.Inet6Address);
    java.net.InetSocketAddress name = HostPort.parse("relay.ferry-test.invalid:80").withoutLookup();
    org.junit.jupiter.api.Assertions.assertTrue(name.isUnresolved());
    assertEquals("relay.ferry-test.invalid", name.getHostString());
  }

  @ParameterizedTest
  @ValueSource(strings = {"[a:b]:80", "[1.2.3.4.5::]:80", "h[x]:80", "a\u00e9:80", "", "host", ":80", "host:", "::1:80", "host:http", "host:65536", "host:-1", "a b:80"})
  void malformedAddressesAreRefused(String text) {
    assertThrows(IllegalArgumentException.class, () -> HostPort.parse(text));
  }
}
