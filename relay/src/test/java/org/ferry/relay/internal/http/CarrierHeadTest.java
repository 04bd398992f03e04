package org.ferry.relay.internal.http;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import java.nio.charset.StandardCharsets;
import java.util.List;
import org.ferry.proto.PollFrames;
import org.ferry.relay.internal.http.CarrierHead.Verdict;
import org.junit.jupiter.api.Test;

class CarrierHeadTest {
  static final String SECRET = "q7Zx-3fK_pL9wVb2Rt6YhA";
  static final String WS_HEAD = "GET /" + SECRET + " HTTP/1.1\r\n"
      + "Host: relay.example.org:8443\r\n"
      + "Upgrade: websocket\r\n"
      + "Connection: keep-alive, Upgrade\r\n"
      + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
      + "Sec-WebSocket-Version: 13\r\n"
      + "User-Agent: Mozilla/5.0\r\n"
      + "\r\n";
  static final String POLL_HEAD = "POST /" + SECRET + " HTTP/1.1\r\n"
      + "Host: 127.0.0.1:8443\r\n"
      + "Content-Type: application/octet-stream\r\n"
      + "Connection: keep-alive\r\n"
      + "Content-Length: " + (PollFrames.REQUEST_HEADER + 5) + "\r\n"
      + "\r\n";

  private final CarrierHead both = new CarrierHead(("/" + SECRET).getBytes(StandardCharsets.US_ASCII), true, true);

  private static Verdict judge(CarrierHead head, String bytes) {
    ByteBuf buf = Unpooled.copiedBuffer(bytes, StandardCharsets.ISO_8859_1);
    try {
      return head.judge(buf);
    } finally {
      buf.release();
    }
  }

  @Test
  void aWebSocketUpgradeOrAPollingPostForTheSecretPathIsACarrierOnlyOnceItsHeadIsComplete() {
    for (String head : List.of(WS_HEAD, POLL_HEAD)) {
      for (int n = 1; n < head.length(); n++) {
        assertEquals(Verdict.MORE, judge(both, head.substring(0, n)), head.substring(0, n));
      }
      assertEquals(Verdict.CARRIER, judge(both, head));
      assertEquals(Verdict.CARRIER, judge(both, head + "body bytes that follow"), "what follows the head is not judged");
    }
    String length = "Content-Length: " + (PollFrames.REQUEST_HEADER + 5);
    for (String proxied : List.of(
        POLL_HEAD.replace(length, "Transfer-Encoding: chunked"),
        POLL_HEAD.replace("Connection: keep-alive", "Expect: 100-continue"))) {
      assertEquals(Verdict.CARRIER, judge(both, proxied), proxied);
    }
  }

  @Test
  void aCarrierThatIsSwitchedOffIsTheFallbacks() {
    byte[] path = ("/" + SECRET).getBytes(StandardCharsets.US_ASCII);
    assertEquals(Verdict.FALLBACK, judge(new CarrierHead(path, false, true), WS_HEAD));
    assertEquals(Verdict.FALLBACK, judge(new CarrierHead(path, true, false), POLL_HEAD));
  }

  @Test
  void everyOtherRequestForTheSecretPathIsTheFallbacks() {
    String ws = WS_HEAD;
    List<String> others = List.of(
        ws.replace("GET /" + SECRET, "GET /" + SECRET + "?x=1"),
        ws.replace("GET /" + SECRET, "GET /" + SECRET.substring(0, 10)),
        ws.replace("GET /" + SECRET, "GET /" + SECRET + "/"),
        ws.replace("GET /" + SECRET, "GET http://relay.example.org/" + SECRET),
        ws.replace("GET /" + SECRET, "GET //" + SECRET),
        ws.replace("GET /" + SECRET, "PUT /" + SECRET),
        ws.replace("GET /", "get /"),
        ws.replace("HTTP/1.1", "HTTP/1.0"),
        ws.replace("HTTP/1.1", "HTTP/1.1 "),
        ws.replace("GET /" + SECRET + " ", "GET  /" + SECRET + " "),
        ws.replace("Host: relay.example.org:8443\r\n", ""),
        ws.replace("Host: relay.example.org:8443\r\n", "Host: a\r\nHost: b\r\n"),
        ws.replace("Host: relay.example.org:8443", "Host: relay.example.org/x"),
        ws.replace("Host: relay.example.org:8443", "Host: "),
        ws.replace("Host: relay.example.org:8443", "Host: ..example"),
        ws.replace("Upgrade: websocket\r\n", ""),
        ws.replace("Connection: keep-alive, Upgrade", "Connection: keep-alive"),
        ws.replace("Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 8"),
        ws.replace("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Key: nonsense"),
        ws.replace("User-Agent: Mozilla/5.0", "User-Agent Mozilla/5.0"),
        ws.replace("User-Agent: Mozilla/5.0", "User-Agent : Mozilla/5.0"),
        ws.replace("User-Agent: Mozilla/5.0", "User-Agent: Mozilla\u0001"),
        ws.replace("User-Agent: Mozilla/5.0\r\n", "User-Agent: Mozilla/5.0\r\n (folded)\r\n"),
        ws.replace("\r\n", "\n"),
        ws.replace("User-Agent: Mozilla/5.0\r\n", "User-Agent: Mozilla/5.0\n"),
        ws.replace("User-Agent: Mozilla/5.0", "Transfer-Encoding: chunked"),
        ws.replace("User-Agent: Mozilla/5.0", "Content-Length: 5"),
        POLL_HEAD.replace("Content-Length: " + (PollFrames.REQUEST_HEADER + 5) + "\r\n", ""),
        POLL_HEAD.replace("Content-Length: " + (PollFrames.REQUEST_HEADER + 5),
            "Content-Length: " + (PollFrames.REQUEST_HEADER + PollFrames.MAX_PAYLOAD + 1)),
        POLL_HEAD.replace("Content-Length: " + (PollFrames.REQUEST_HEADER + 5), "Content-Length: 3"),
        POLL_HEAD.replace("Content-Length: " + (PollFrames.REQUEST_HEADER + 5), "Content-Length: +40"),
        POLL_HEAD.replace("Connection: keep-alive", "Content-Length: 40"),
        POLL_HEAD.replace("Connection: keep-alive", "Expect: something-else"),
        POLL_HEAD.replace("Connection: keep-alive", "Transfer-Encoding: chunked"),
        POLL_HEAD.replace("Content-Length: " + (PollFrames.REQUEST_HEADER + 5), "Transfer-Encoding: gzip, chunked"),
        POLL_HEAD.replace("Content-Length: " + (PollFrames.REQUEST_HEADER + 5),
            "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked"),
        POLL_HEAD.replace("Connection: keep-alive", "Upgrade: h2c"));
    for (String head : others) {
      assertEquals(Verdict.FALLBACK, judge(both, head), head);
    }
  }

  @Test
  void bytesThatCannotOpenACarrierRequestAreTheFallbacksFromTheFirstByte() {
    for (String opening : List.of("\u0016", "\r", "\n", "H", "PRI", "GE ", "GET ?", "POST  ", "OPTIONS", "\u0000")) {
      assertEquals(Verdict.FALLBACK, judge(both, opening), opening);
    }
    for (String opening : List.of("G", "GET", "GET /", "P", "POST /")) {
      assertEquals(Verdict.MORE, judge(both, opening), opening);
    }
  }

  @Test
  void anUnfinishedRequestLineIsHeldTheSameWhetherItGuessesTheSecretRightOrWrong() {
    String right = "GET /" + SECRET + " HTTP/1.1";
    String wrong = "GET /" + (SECRET.charAt(0) == 'A' ? 'B' : 'A') + SECRET.substring(1) + " HTTP/1.1";
    for (int n = 1; n <= right.length(); n++) {
      assertEquals(judge(both, right.substring(0, n)), judge(both, wrong.substring(0, n)), "after " + n + " bytes");
    }
    assertEquals(Verdict.MORE, judge(both, right + "\r\n"));
    assertEquals(Verdict.FALLBACK, judge(both, wrong + "\r\n"), "a wrong line is passed on as soon as it is whole");
  }

  @Test
  void aHeadNotCompleteWithinTheCapIsTheFallbacks() {
    String line = "GET /" + "a".repeat(CarrierHead.MAX_HEAD);
    assertEquals(Verdict.MORE, judge(both, line.substring(0, CarrierHead.MAX_HEAD - 1)));
    assertEquals(Verdict.FALLBACK, judge(both, line.substring(0, CarrierHead.MAX_HEAD)));
    String huge = WS_HEAD.replace("User-Agent: Mozilla/5.0", "Cookie: " + "c".repeat(CarrierHead.MAX_HEAD));
    assertEquals(Verdict.MORE, judge(both, huge.substring(0, CarrierHead.MAX_HEAD - 1)));
    assertEquals(Verdict.FALLBACK, judge(both, huge.substring(0, CarrierHead.MAX_HEAD)));
    assertEquals(Verdict.FALLBACK, judge(both, huge));
  }

  @Test
  void hidingOverwritesEveryWholeSecretWithFillerOfTheSameLengthAndLeavesTheRest() {
    String request = "GET /" + SECRET + "?x HTTP/1.1\r\nReferer: https://x/" + SECRET + SECRET
        + "\r\nX-Prefix: " + SECRET.substring(0, 21) + "\r\n\r\n";
    ByteBuf buf = Unpooled.copiedBuffer(request, StandardCharsets.US_ASCII);
    try {
      String hidden = both.hide(buf).toString(StandardCharsets.US_ASCII);
      assertFalse(hidden.contains(SECRET), hidden);
      assertEquals(request.length(), hidden.length());
      String filler = hidden.substring(5, 5 + SECRET.length());
      assertTrue(filler.matches("[A-Za-z0-9_-]+"), filler);
      assertEquals(request.replace(SECRET, filler), hidden, "only the secret changed");
    } finally {
      buf.release();
    }
  }
}
