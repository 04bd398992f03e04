package org.ferry.proto;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class BridgeLineTest {
  @ParameterizedTest
  @ValueSource(strings = {
      "direct 203.0.113.7:7443",
      "direct [2001:db8::7]:7443",
      "ws wss://relay.example.org:443/Zm9vYmFyYmF6cXV4 pin=fW5HPa6_xzewxAocbyrFIThzQuCIMPA0papG4x6NF4A",
      "ws ws://127.0.0.1:8080/secret",
      "poll https://198.51.100.4:443/secret",
      "poll http://198.51.100.4:80/secret",
      "obfs4 198.51.100.4:8444 cert=jkln8PzGUN4HHYz778i9Nqmq3CEiagj9dpV8byIJYk8TWrFyDT8P+p3IibPkjkFpOGfMcw iat-mode=0",
  })
  void linesPrintAsTheyAreWrittenAndParseBackEqual(String text) {
    BridgeLine line = BridgeLine.parse(text);
    assertEquals(text, line.toString());
    assertEquals(line, BridgeLine.parse(line.toString()));
  }

  @ParameterizedTest
  @ValueSource(strings = {
      "", "ws", "tor 1.2.3.4:9001", "direct 1.2.3.4", "direct 1.2.3.4:0", "direct ::1:80",
      "ws https://1.2.3.4:443/x", "ws wss://1.2.3.4:443", "ws wss://1.2.3.4:443/", "poll ftp://1.2.3.4/x",
      "ws wss://1.2.3.4:443/x pin=short", "ws wss://1.2.3.4:443/x pin=***", "ws wss://1.2.3.4:443/x color=red",
      "obfs4 1.2.3.4:443", "obfs4 1.2.3.4:443 cert=x", "obfs4 1.2.3.4:443 cert=x iat-mode=0 cert=y",
      "direct 1.2.3.4:80 pin=fW5HPa6_xzewxAocbyrFIThzQuCIMPA0papG4x6NF4A", "direct\t1.2.3.4:80",
  })
  void malformedLinesAreRefusedWithTheReason(String text) {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> BridgeLine.parse(text));
    assertTrue(e.getMessage().startsWith("not a bridge line ("), e.getMessage());
  }

  @org.junit.jupiter.api.Test
  void theBridgePrefixThatRelaysPrintIsAccepted() {
    BridgeLine line = BridgeLine.parse("bridge: ws wss://1.2.3.4:443/secret");
    assertEquals(BridgeLine.Kind.WS, line.kind());
    assertEquals("/secret", line.path());
    assertTrue(line.tls());
    assertFalse(line.pin().isPresent());
  }
}
