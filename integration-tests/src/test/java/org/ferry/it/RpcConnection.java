package org.ferry.it;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.IOException;
import java.io.InputStream;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Optional;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/** A raw JSON-RPC connection to a daemon's socket; lines read on a thread of its own. */
final class RpcConnection implements AutoCloseable {
  private static final String END = "\u0000end";
  private final SocketChannel channel;
  private final BlockingQueue<String> lines = new LinkedBlockingQueue<>();

  RpcConnection(Path socket) throws IOException {
    channel = SocketChannel.open(StandardProtocolFamily.UNIX);
    channel.connect(UnixDomainSocketAddress.of(socket));
    Thread reader = new Thread(this::read, "rpc-test-reader");
    reader.setDaemon(true);
    reader.start();
  }

  private void read() {
    try {
      InputStream in = java.nio.channels.Channels.newInputStream(new ReadOnly(channel));
      java.io.BufferedReader r = new java.io.BufferedReader(new java.io.InputStreamReader(in, StandardCharsets.UTF_8));
      String l;
      while ((l = r.readLine()) != null) {
        lines.add(l);
      }
    } catch (IOException e) {
      // Closed.
    }
    lines.add(END);
  }

  /** Writes raw bytes. */
  void sendRaw(byte[] bytes) throws IOException {
    ByteBuffer b = ByteBuffer.wrap(bytes);
    while (b.hasRemaining()) {
      channel.write(b);
    }
  }

  void send(String line) throws IOException {
    sendRaw((line + "\n").getBytes(StandardCharsets.UTF_8));
  }

  /** The next message, or empty if the daemon closed the connection; fails after 60 s. */
  Optional<JsonObject> next() throws InterruptedException {
    String l = lines.poll(60, TimeUnit.SECONDS);
    if (l == null) {
      throw new AssertionError("no answer within 60 s");
    }
    return END.equals(l) ? Optional.empty() : Optional.of(JsonParser.parseString(l).getAsJsonObject());
  }

  /** Sends a request and returns its answer, skipping notifications. */
  JsonObject call(String request) throws IOException, InterruptedException {
    send(request);
    while (true) {
      JsonObject m = next().orElseThrow(() -> new AssertionError("connection closed instead of an answer"));
      if (!m.has("method")) {
        return m;
      }
    }
  }

  @Override
  public void close() throws IOException {
    channel.close();
  }

  /** Reads only: Channels.newInputStream on the socket itself would lock out writes during a read. */
  private record ReadOnly(SocketChannel ch) implements java.nio.channels.ReadableByteChannel {
    @Override
    public int read(ByteBuffer dst) throws IOException {
      return ch.read(dst);
    }

    @Override
    public boolean isOpen() {
      return ch.isOpen();
    }

    @Override
    public void close() throws IOException {
      ch.close();
    }
  }
}
