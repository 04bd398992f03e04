package org.ferry.relay.internal.http;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.embedded.EmbeddedChannel;
import io.netty.channel.socket.ChannelInputShutdownEvent;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The gate on an {@link EmbeddedChannel} (the client's connection), with another embedded channel
 * standing for the connection to the fallback web server.
 */
class FallbackGateTest {
  private static final long SNIFF_MILLIS = 5_000;
  private static final String SECRET = CarrierHeadTest.SECRET;

  private final CarrierHead carrier = new CarrierHead(("/" + SECRET).getBytes(StandardCharsets.US_ASCII), true, true);
  private final EmbeddedChannel web = new EmbeddedChannel();
  private int dials;
  private boolean webDown;
  private final EmbeddedChannel client = new EmbeddedChannel();

  FallbackGateTest() {
    client.freezeTime();
    client.pipeline().addLast("gate", new FallbackGate(carrier, loop -> dial(), SNIFF_MILLIS));
    // Stands for the HTTP handlers that serve carriers.
    client.pipeline().addLast("http", new ChannelInboundHandlerAdapter());
  }

  private ChannelFuture dial() {
    dials++;
    return webDown ? web.newFailedFuture(new IOException("connection refused")) : web.newSucceededFuture();
  }

  @AfterEach
  void releaseAll() {
    client.finishAndReleaseAll();
    web.finishAndReleaseAll();
  }

  private static ByteBuf ascii(String s) {
    return Unpooled.copiedBuffer(s, StandardCharsets.ISO_8859_1);
  }

  /** Everything written so far to the given channel's outbound side, as text. */
  private static String sent(EmbeddedChannel ch) {
    StringBuilder b = new StringBuilder();
    for (ByteBuf buf; (buf = ch.readOutbound()) != null; ) {
      b.append(buf.toString(StandardCharsets.ISO_8859_1));
      buf.release();
    }
    return b.toString();
  }

  private static String passed(EmbeddedChannel ch) {
    StringBuilder b = new StringBuilder();
    for (ByteBuf buf; (buf = ch.readInbound()) != null; ) {
      b.append(buf.toString(StandardCharsets.ISO_8859_1));
      buf.release();
    }
    return b.toString();
  }

  @Test
  void aCarrierHeadDeliveredByteByByteIsPassedOnWholeAndTheGateStepsAside() {
    String request = CarrierHeadTest.WS_HEAD + "\u0082\u0005frame";
    for (int i = 0; i < CarrierHeadTest.WS_HEAD.length() - 1; i++) {
      client.writeInbound(ascii(request.substring(i, i + 1)));
      assertEquals("", passed(client), "nothing passes before the head is whole");
    }
    client.writeInbound(ascii(request.substring(CarrierHeadTest.WS_HEAD.length() - 1)));
    assertEquals(request, passed(client));
    assertNull(client.pipeline().get("gate"));
    assertNotNull(client.pipeline().get("http"));
    client.writeInbound(ascii("more"));
    assertEquals("more", passed(client), "later bytes go straight to HTTP");
    client.advanceTimeBy(SNIFF_MILLIS * 2, TimeUnit.MILLISECONDS);
    client.runScheduledPendingTasks();
    assertEquals(0, dials, "the fallback was never dialled");
  }

  @Test
  void aHeadForAnotherPathSplitAcrossReadsGoesToTheFallbackWithEveryByteAfterIt() {
    client.writeInbound(ascii("GET /robots.txt HTTP/1.1\r\nHo"));
    assertEquals(1, dials, "diverted as soon as the request line was whole");
    assertNull(client.pipeline().get("http"), "the carrier's handlers are gone");
    assertEquals("GET /robots.txt HTTP/1.1\r\nHo", sent(web));
    client.writeInbound(ascii("st: x\r\n\r\nGET / HTTP/1.1\r\n"));
    assertEquals("st: x\r\n\r\nGET / HTTP/1.1\r\n", sent(web));
    web.writeInbound(ascii("HTTP/1.1 404 Not Found\r\n"));
    assertEquals("HTTP/1.1 404 Not Found\r\n", sent(client), "the web server's answer comes back");
    assertEquals("", passed(client));
  }

  @Test
  void aHeadLargerThanTheCapGoesToTheFallbackWhenTheCapIsReachedWithTheSecretHidden() {
    String huge = CarrierHeadTest.WS_HEAD.replace("User-Agent: Mozilla/5.0", "Cookie: " + "c".repeat(20_000));
    int at = 0;
    while (dials == 0) {
      int n = Math.min(1000, huge.length() - at);
      client.writeInbound(ascii(huge.substring(at, at + n)));
      at += n;
    }
    assertTrue(at >= CarrierHead.MAX_HEAD && at < CarrierHead.MAX_HEAD + 1000, "diverted at the cap: " + at);
    client.writeInbound(ascii(huge.substring(at)));
    String got = sent(web);
    assertEquals(huge.length(), got.length());
    assertFalse(got.contains(SECRET), "the secret is hidden from the fallback");
    assertEquals(huge.substring(5 + SECRET.length()), got.substring(5 + SECRET.length()));
    assertEquals("", passed(client));
  }

  @Test
  void anUnfinishedHeadGoesToTheFallbackAsItIsWhenTimeIsUp() {
    client.writeInbound(ascii("GET /"));
    client.advanceTimeBy(SNIFF_MILLIS - 1, TimeUnit.MILLISECONDS);
    client.runScheduledPendingTasks();
    assertEquals(0, dials, "held until the time is up");
    client.advanceTimeBy(1, TimeUnit.MILLISECONDS);
    client.runScheduledPendingTasks();
    assertEquals(1, dials);
    assertEquals("GET /", sent(web));
    client.writeInbound(ascii("index.html HTTP/1.1\r\n"));
    assertEquals("index.html HTTP/1.1\r\n", sent(web), "and the rest follows it");
  }

  @Test
  void aSilentConnectionGoesToTheFallbackWhenTimeIsUp() {
    client.advanceTimeBy(SNIFF_MILLIS, TimeUnit.MILLISECONDS);
    client.runScheduledPendingTasks();
    assertEquals(1, dials);
    assertEquals("", sent(web));
    assertTrue(web.isOpen() && client.isOpen(), "the web server decides when to give up");
  }

  @Test
  void aClientThatStopsSendingMidHeadIsPassedToTheFallbackWithItsEnd() {
    client.writeInbound(ascii("GET / HT"));
    assertEquals(0, dials);
    client.pipeline().fireUserEventTriggered(ChannelInputShutdownEvent.INSTANCE);
    assertEquals(1, dials);
    assertEquals("GET / HT", sent(web));
    assertFalse(web.isOpen(), "the end of the client's bytes ended the fallback's input");
  }

  @Test
  void aSecretPathRequestThatIsNotACarriersReachesTheFallbackWithTheSecretHidden() {
    String request = "GET /" + SECRET + " HTTP/1.0\r\n\r\n";
    client.writeInbound(ascii(request));
    String got = sent(web);
    assertEquals(request.length(), got.length());
    assertFalse(got.contains(SECRET), got);
    assertTrue(got.startsWith("GET /") && got.endsWith(" HTTP/1.0\r\n\r\n"), got);
  }

  @Test
  void aFallbackThatDoesNotAnswerClosesTheConnection() {
    webDown = true;
    client.writeInbound(ascii("GET / HTTP/1.1\r\n"));
    assertEquals(1, dials);
    assertFalse(client.isOpen());
    assertEquals("", sent(client), "nothing is made up in its place");
  }

  @Test
  void bytesThatAreNotHttpGoToTheFallbackAtOnce() {
    client.writeInbound(Unpooled.wrappedBuffer(new byte[] {0x16, 0x03, 0x01}));
    assertEquals(1, dials);
    assertEquals("\u0016\u0003\u0001", sent(web));
  }
}
