package org.ferry.sdk.internal.dial;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.netty.buffer.Unpooled;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

class DialerTest {
  @Test
  void onlyTheStartOfATlsHandshakeWinsARace() {
    // A TLS 1.3 ServerHello record starts 16 03 03.
    assertTrue(Dialer.startsLikeTls(Unpooled.wrappedBuffer(new byte[] {0x16, 0x03, 0x03, 0x00, 0x7a})));
    assertTrue(Dialer.startsLikeTls(Unpooled.wrappedBuffer(new byte[] {0x16})));
    for (String page : new String[] {"<!DOCTYPE html>", "HTTP/1.1 200 OK\r\n", "\u0015\u0003\u0003"}) {
      assertFalse(Dialer.startsLikeTls(Unpooled.copiedBuffer(page, StandardCharsets.ISO_8859_1)), page);
    }
    assertFalse(Dialer.startsLikeTls(Unpooled.wrappedBuffer(new byte[] {0x16, 0x48})));
    assertFalse(Dialer.startsLikeTls(Unpooled.EMPTY_BUFFER));
  }
}
