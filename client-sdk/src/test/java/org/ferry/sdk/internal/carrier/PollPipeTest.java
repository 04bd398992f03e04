package org.ferry.sdk.internal.carrier;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.sun.net.httpserver.HttpServer;
import io.netty.buffer.ByteBuf;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Optional;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.ferry.proto.BridgeLine;
import org.ferry.proto.PollFrames;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The polling carrier takes only answers with the relay's framing as the relay's. */
class PollPipeTest {
  @TempDir Path dir;
  private HttpServer server;
  private CarrierConnector connector;

  @AfterEach
  void stop() {
    if (server != null) {
      server.stop(0);
    }
    if (connector != null) {
      connector.close();
    }
  }

  /** Opens a poll line to a loopback server that answers every request with {@code status}, {@code type}, {@code body}. */
  private CarrierFailure openAgainst(int status, String type, byte[] body) throws Exception {
    server = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
    server.createContext("/", x -> {
      x.getRequestBody().readAllBytes();
      x.getResponseHeaders().set("Content-Type", type);
      x.sendResponseHeaders(status, body.length);
      try (OutputStream out = x.getResponseBody()) {
        out.write(body);
      }
    });
    server.start();
    connector = new CarrierConnector(Optional.empty(), "obfs4proxy", dir.resolve("obfs4"), Duration.ofSeconds(5));
    BridgeLine line = BridgeLine.parse("poll http://127.0.0.1:" + server.getAddress().getPort() + "/abcdefghijklmnop");
    var opened = connector.open(line, new Pipe.Listener() {
      @Override
      public void onData(ByteBuf data) {
        data.release();
      }

      @Override
      public void onClosed() {}
    });
    ExecutionException e = assertThrows(ExecutionException.class, () -> opened.get(10, TimeUnit.SECONDS));
    return assertInstanceOf(CarrierFailure.class, e.getCause());
  }

  @Test
  void aCaptivePortalsPageIsNotARelaysAnswer() throws Exception {
    CarrierFailure f = openAgainst(200, "text/html; charset=utf-8",
        "<html><body>Log in to the hotel Wi-Fi</body></html>".getBytes(StandardCharsets.UTF_8));
    assertEquals(CarrierFailure.Kind.LINE, f.kind());
    assertEquals("answered HTTP 200 with text/html, not the relay's polling framing (a block page or captive portal?)",
        f.getMessage());
  }

  @Test
  void bytesWithTheRightTypeButUnknownFlagsAreNotARelaysAnswer() throws Exception {
    CarrierFailure f = openAgainst(200, PollFrames.CONTENT_TYPE, "<html>".getBytes(StandardCharsets.US_ASCII));
    assertEquals(CarrierFailure.Kind.LINE, f.kind());
  }

  @Test
  void aRedirectIsNamedByItsStatus() throws Exception {
    CarrierFailure f = openAgainst(302, "text/html", new byte[0]);
    assertEquals("answered HTTP 302 Found instead of the relay's polling answer (a block page or captive portal?)",
        f.getMessage());
  }

  @Test
  void aRelayThatClosesTheSessionAtOnceCouldNotReachItsServer() throws Exception {
    CarrierFailure f = openAgainst(200, PollFrames.CONTENT_TYPE, new byte[] {PollFrames.CLOSE});
    assertEquals(CarrierFailure.Kind.SERVER_BEHIND_BRIDGE, f.kind());
    assertTrue(f.getMessage().startsWith("the bridge answered, but the server behind it did not"), f.getMessage());
  }
}
