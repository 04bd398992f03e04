package org.ferry.proto;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

class BridgeLineTest {
  private static final String CERT = "jkln8PzGUN4HHYz778i9Nqmq3CEiagj9dpV8byIJYk8TWrFyDT8P+p3IibPkjkFpOGfMcw";
  private static final String PIN = "fW5HPa6_xzewxAocbyrFIThzQuCIMPA0papG4x6NF4A";

  @ParameterizedTest
  @ValueSource(strings = {
      "direct 203.0.113.7:7443",
      "direct [2001:db8::7]:7443",
      "ws wss://relay.example.org:443/Zm9vYmFyYmF6cXV4 pin=" + PIN,
      "ws ws://127.0.0.1:8080/secret",
      "ws wss://[::1]:8443/secret",
      "poll https://198.51.100.4:443/secret",
      "poll http://198.51.100.4:80/secret",
      "obfs4 198.51.100.4:8444 cert=" + CERT + " iat-mode=0",
      "obfs4 [2001:db8::4]:8444 cert=" + CERT + " iat-mode=2",
  })
  void linesPrintAsTheyAreWrittenAndParseBackEqual(String text) {
    BridgeLine line = BridgeLine.parse(text);
    assertEquals(text, line.toString());
    assertEquals(line, BridgeLine.parse(line.toString()));
  }

  @ParameterizedTest
  @ValueSource(strings = {
      "", "ws", "direct 1.2.3.4", "direct 1.2.3.4:0", "direct ::1:80", "direct [1:2]:80", "direct [::g]:80",
      "ws https://1.2.3.4:443/x", "ws wss://1.2.3.4:443", "ws wss://1.2.3.4:443/", "poll ftp://1.2.3.4/x",
      "ws wss://1.2.3.4:443/x pin=short", "ws wss://1.2.3.4:443/x pin=***", "ws wss://1.2.3.4:443/x =red",
      "ws wss://1.2.3.4:443/x red", "obfs4 1.2.3.4:443", "obfs4 1.2.3.4:443 cert=" + CERT,
      "obfs4 1.2.3.4:443 cert=" + CERT + " iat-mode=0 cert=" + CERT, "direct 1.2.3.4:80 a=1 a=2",
      "direct 1.2.3.4:80 \u00e9=1", "1.2.3.4:80", "wss://1.2.3.4:443/x", "[::1]:80",
  })
  void malformedLinesAreRefusedWithTheReason(String text) {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> BridgeLine.parse(text));
    assertTrue(e.getMessage().startsWith("not a bridge line ("), e.getMessage());
  }

  @ParameterizedTest
  @CsvSource(delimiter = '|', value = {
      "obfs4 1.2.3.4:443 cert=CERT iat-mode=x | iat-mode must be 0, 1 or 2",
      "obfs4 1.2.3.4:443 cert=CERT iat-mode=3 | iat-mode must be 0, 1 or 2",
      "obfs4 1.2.3.4:443 cert=CERT iat-mode= | iat-mode must be 0, 1 or 2",
      "obfs4 1.2.3.4:443 cert=x iat-mode=0 | cert must be",
      "obfs4 1.2.3.4:443 cert=CERT;iat-mode=1 iat-mode=0 | cert must be",
      "obfs4 1.2.3.4:443 cert=CERT\\;x=y iat-mode=0 | cert must be",
      "obfs4 1.2.3.4:443 cert=CERT= iat-mode=0 | cert must be",
      "ws wss://1.2.3.4:443/x pin=AAAA | pin must be",
  })
  void aBadValueIsRefusedWhenTheLineIsReadNamingTheKey(String text, String reason) {
    String line = text.replace("CERT", CERT);
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> BridgeLine.parse(line));
    assertTrue(e.getMessage().contains(reason), e.getMessage());
  }

  @ParameterizedTest
  @ValueSource(strings = {
      "ws wss://1.2.3.4:443/x color=red",
      "ws wss://1.2.3.4:443/x future-key=a=b=c",
      "ws wss://1.2.3.4:443/x cert=" + CERT,
      "ws wss://1.2.3.4:443/x iat-mode=7",
  })
  void anUnknownParameterIsLeftOutWithANoteNotRefused(String text) {
    BridgeLine.Reading r = BridgeLine.read(text);
    assertEquals("ws wss://1.2.3.4:443/x", r.line().orElseThrow().toString());
    assertEquals(1, r.notes().size(), r.notes().toString());
    assertTrue(r.notes().get(0).startsWith("ws 1.2.3.4:443: left out parameter '"), r.notes().get(0));
    assertEquals(r.line().get(), BridgeLine.parse(text), "parse reads it the same way");
  }

  @Test
  void parametersOfOtherCarriersAreLeftOutTooAndNotesNameNoSecret() {
    BridgeLine.Reading r = BridgeLine.read("obfs4 1.2.3.4:443 cert=" + CERT + " iat-mode=1 pin=" + PIN + " x=secretvalue");
    assertEquals("obfs4 1.2.3.4:443 cert=" + CERT + " iat-mode=1", r.line().orElseThrow().toString());
    assertEquals(List.of(
        "obfs4 1.2.3.4:443: left out parameter 'pin', which this version does not know",
        "obfs4 1.2.3.4:443: left out parameter 'x', which this version does not know"), r.notes());
    BridgeLine.Reading direct = BridgeLine.read("direct 1.2.3.4:80 pin=" + PIN);
    assertEquals("direct 1.2.3.4:80", direct.line().orElseThrow().toString());
    r.notes().forEach(n -> assertFalse(n.contains("secretvalue") || n.contains(CERT) || n.contains(PIN), n));
  }

  @ParameterizedTest
  @ValueSource(strings = {"meek https://1.2.3.4/x url=y", "snowflake", "tor 1.2.3.4:9001"})
  void aLineForAnUnknownCarrierIsSkippedWithANote(String text) {
    BridgeLine.Reading r = BridgeLine.read(text);
    assertEquals(Optional.empty(), r.line());
    assertEquals(1, r.notes().size());
    assertTrue(r.notes().get(0).startsWith("skipped a bridge line for carrier '" + text.split(" ")[0] + "'"),
        r.notes().get(0));
    assertThrows(IllegalArgumentException.class, () -> BridgeLine.parse(text), "parse wants a line it can use");
  }

  @ParameterizedTest
  @ValueSource(strings = {
      "obfs4\t1.2.3.4:443\tcert=CERT\tiat-mode=0",
      "obfs4\u00a01.2.3.4:443\u00a0cert=CERT\u00a0iat-mode=0",
      "obfs4 \u202f 1.2.3.4:443\u2007cert=CERT \t iat-mode=0\u00a0",
      "\ufeffbridge:\u00a0obfs4 1.2.3.4:443 cert=CERT\u200biat-mode=0\r\n",
  })
  void tabsAndNoBreakSpacesSeparateFieldsLikeSpaces(String text) {
    assertEquals("obfs4 1.2.3.4:443 cert=" + CERT + " iat-mode=0",
        BridgeLine.parse(text.replace("CERT", CERT)).toString());
  }

  @ParameterizedTest
  @CsvSource(delimiter = '|', value = {
      "direct [0:0:0:0:0:0:0:1]:7443 | direct [::1]:7443",
      "direct [2001:DB8:0:0:0:0:0:7]:7443 | direct [2001:db8::7]:7443",
      "ws wss://[0:0:0:0:0:0:0:1]:443/s | ws wss://[::1]:443/s",
      "obfs4 [fe80:0:0:0:0:0:0:1]:1 cert=CERT iat-mode=0 | obfs4 [fe80::1]:1 cert=CERT iat-mode=0",
  })
  void ipv6AddressesAreKeptInTheirShortestForm(String text, String expected) {
    assertEquals(expected.replace("CERT", CERT), BridgeLine.parse(text.replace("CERT", CERT)).toString());
  }

  @Test
  void linesMadeInCodeAreCheckedLikeParsedOnes() {
    BridgeLine made = new BridgeLine(BridgeLine.Kind.DIRECT, "0:0:0:0:0:0:0:1", 80, false, "", Optional.empty(), Map.of());
    assertEquals("direct [::1]:80", made.toString());
    assertThrows(IllegalArgumentException.class, () -> new BridgeLine(BridgeLine.Kind.OBFS4, "1.2.3.4", 80, false, "",
        Optional.empty(), Map.of("cert", CERT + ";iat-mode=1", "iat-mode", "0")));
    assertThrows(IllegalArgumentException.class, () -> new BridgeLine(BridgeLine.Kind.WS, "1.2.3.4", 80, false, "/x",
        Optional.empty(), Map.of("color", "red")));
  }

  @Test
  void theBridgePrefixThatRelaysPrintIsAccepted() {
    BridgeLine line = BridgeLine.parse("bridge: ws wss://1.2.3.4:443/secret");
    assertEquals(BridgeLine.Kind.WS, line.kind());
    assertEquals("/secret", line.path());
    assertTrue(line.tls());
    assertFalse(line.pin().isPresent());
  }
}
