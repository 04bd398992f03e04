package org.ferry.sdk.cli.daemon;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.Pipe;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

class JsonRpcTest {
  @Test
  void onlyStrictSingleJsonValuesParse() {
    for (String bad : new String[] {"{'a':1}", "{a:1}", "{\"a\":1} x", "{\"a\":1}{}", "// c\n{}", "[1,]",
        "{\"a\":NaN}", "", "[".repeat(100) + "]".repeat(100)}) {
      JsonRpc.Failure f = assertThrows(JsonRpc.Failure.class, () -> JsonRpc.parse(bad), bad);
      assertEquals(JsonRpc.PARSE_ERROR, f.code, bad);
    }
    assertEquals(1.5, assertParses("{\"a\":1.5}").get("a").getAsDouble());
  }

  private static JsonObject assertParses(String json) {
    try {
      return JsonRpc.parse(json).getAsJsonObject();
    } catch (JsonRpc.Failure f) {
      throw new AssertionError(json, f);
    }
  }

  @Test
  void linesEscapeWhatCouldSteerATerminal() throws Exception {
    JsonObject o = new JsonObject();
    String text = "a\u001b[2Jb\u009b31mc\u202ed\u2066e\u2028f<g>&\n";
    o.addProperty("text", text);
    String line = JsonRpc.toLine(o);
    assertTrue(line.chars().allMatch(c -> c >= 0x20 && c < 0x7f), line);
    assertEquals(text, JsonRpc.parse(line).getAsJsonObject().get("text").getAsString());
    assertTrue(line.contains("<g>&"), "no HTML escaping: " + line);
  }

  @Test
  void aLineOverOneMebibyteIsRefusedAndAShorterOneRead() throws IOException {
    Pipe pipe = Pipe.open();
    byte[] ok = ("x".repeat(LineChannel.MAX_LINE_BYTES) + "\n").getBytes(StandardCharsets.US_ASCII);
    byte[] tooLong = ("y".repeat(LineChannel.MAX_LINE_BYTES + 1) + "\n").getBytes(StandardCharsets.US_ASCII);
    Thread writer = new Thread(() -> {
      try {
        pipe.sink().write(ByteBuffer.wrap(ok));
        pipe.sink().write(ByteBuffer.wrap(tooLong));
        pipe.sink().close();
      } catch (IOException e) {
        // The reader stopped.
      }
    });
    writer.start();
    LineChannel lines = new LineChannel(new Duplex(pipe.source()));
    assertEquals(LineChannel.MAX_LINE_BYTES, lines.readLine().length());
    assertThrows(LineChannel.LineTooLong.class, lines::readLine);
    pipe.source().close();
  }

  /** A read-only ByteChannel over a pipe's source. */
  private record Duplex(Pipe.SourceChannel in) implements java.nio.channels.ByteChannel {
    @Override
    public int read(ByteBuffer dst) throws IOException {
      return in.read(dst);
    }

    @Override
    public int write(ByteBuffer src) {
      throw new UnsupportedOperationException();
    }

    @Override
    public boolean isOpen() {
      return in.isOpen();
    }

    @Override
    public void close() throws IOException {
      in.close();
    }
  }
}
