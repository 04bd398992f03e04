package org.ferry.sdk.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.nio.charset.Charset;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

class Utf8ArgumentsTest {
  private static final Charset ASCII = StandardCharsets.US_ASCII;

  private static byte[] cmdline(byte[]... entries) {
    ByteArrayOutputStream b = new ByteArrayOutputStream();
    for (byte[] e : entries) {
      b.writeBytes(e);
      b.write(0);
    }
    return b.toByteArray();
  }

  private static byte[] utf8(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }

  @Test
  void argumentsTheCLocaleDamagedAreReadAgainAsUtf8() {
    String text = "سلام 👋 e\u0301";
    byte[] raw = cmdline(utf8("java"), utf8("-cp"), utf8("x.jar"), utf8("Main"), utf8("send"), utf8(""), utf8(text));
    String[] asTheJvmSawThem = {"send", "", new String(utf8(text), ASCII)};
    assertArrayEquals(new String[] {"send", "", text}, Utf8Arguments.of(asTheJvmSawThem, raw, ASCII));
  }

  @Test
  void bytesThatAreNotUtf8AreRefused() {
    byte[] latin1 = {'c', 'a', 'f', (byte) 0xe9};
    byte[] raw = cmdline(utf8("java"), utf8("Main"), utf8("send"), latin1);
    String[] seen = {"send", new String(latin1, StandardCharsets.UTF_8)};
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> Utf8Arguments.of(seen, raw, StandardCharsets.UTF_8));
    assertTrue(e.getMessage().startsWith("argument 2 is not valid UTF-8"), e.getMessage());
  }

  @Test
  void withoutTheOriginalBytesADamagedArgumentIsRefused() {
    String[] seen = {"send", "caf\ufffd"};
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> Utf8Arguments.of(seen, null, ASCII));
    assertTrue(e.getMessage().contains("U+FFFD"), e.getMessage());
    // A command line that does not end in what the JVM decoded is not trusted either.
    assertThrows(IllegalArgumentException.class,
        () -> Utf8Arguments.of(seen, cmdline(utf8("java"), utf8("other")), ASCII));
  }
}
