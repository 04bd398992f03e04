package org.ferry.sdk.cli.daemon;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ByteChannel;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;

/**
 * Newline-delimited messages over a socket channel: UTF-8 lines ended by LF, at most
 * {@link #MAX_LINE_BYTES} each. Reads and writes may run on two threads at once (the channel's
 * own read and write locks; not {@code Channels.newInputStream}, whose blocking reads hold the
 * lock that writes need). Writes are whole lines, one at a time.
 */
final class LineChannel implements AutoCloseable {
  /** The longest line read, without its LF: 1 MiB. */
  static final int MAX_LINE_BYTES = 1 << 20;

  /** A line longer than {@link #MAX_LINE_BYTES}: the connection is out of step and is closed. */
  static final class LineTooLong extends IOException {
    private static final long serialVersionUID = 1L;

    LineTooLong() {
      super("request over " + MAX_LINE_BYTES + " bytes");
    }
  }

  /** A line that is not UTF-8. */
  static final class NotUtf8 extends IOException {
    private static final long serialVersionUID = 1L;

    NotUtf8() {
      super("the line is not valid UTF-8");
    }
  }

  private final ByteChannel channel;
  private final ByteBuffer in = ByteBuffer.allocate(64 * 1024).flip();
  private final Object writeLock = new Object();

  LineChannel(ByteChannel channel) {
    this.channel = channel;
  }

  /**
   * The next line without its LF (a last line without one counts), or null at the end of the
   * stream.
   *
   * @throws LineTooLong if the line is longer than {@link #MAX_LINE_BYTES}; the rest of the
   *     stream is then unusable
   * @throws NotUtf8 if the line is not UTF-8; the next line can still be read
   */
  String readLine() throws IOException {
    ByteArrayOutputStream line = new ByteArrayOutputStream();
    while (true) {
      while (in.hasRemaining()) {
        byte b = in.get();
        if (b == '\n') {
          return decode(line.toByteArray());
        }
        if (line.size() >= MAX_LINE_BYTES) {
          throw new LineTooLong();
        }
        line.write(b);
      }
      in.clear();
      int n = channel.read(in);
      in.flip();
      if (n < 0) {
        return line.size() == 0 ? null : decode(line.toByteArray());
      }
    }
  }

  private static String decode(byte[] bytes) throws NotUtf8 {
    try {
      return StandardCharsets.UTF_8.newDecoder()
          .onMalformedInput(CodingErrorAction.REPORT)
          .onUnmappableCharacter(CodingErrorAction.REPORT)
          .decode(ByteBuffer.wrap(bytes)).toString();
    } catch (CharacterCodingException e) {
      throw new NotUtf8();
    }
  }

  /** Writes {@code line} and an LF, whole, before any other line. */
  void writeLine(String line) throws IOException {
    ByteBuffer bytes = ByteBuffer.wrap((line + "\n").getBytes(StandardCharsets.UTF_8));
    synchronized (writeLock) {
      while (bytes.hasRemaining()) {
        channel.write(bytes);
      }
    }
  }

  @Override
  public void close() {
    try {
      channel.close();
    } catch (IOException e) {
      // Closed either way.
    }
  }
}
