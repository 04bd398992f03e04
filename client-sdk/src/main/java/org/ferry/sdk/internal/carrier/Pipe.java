package org.ferry.sdk.internal.carrier;

import io.netty.buffer.ByteBuf;

/**
 * An open carrier: a two-way byte stream to the server, whatever it travels in. The bytes are
 * those of the client's TLS session with the server.
 */
public interface Pipe {
  /** Queues bytes to send; takes ownership of {@code data}. {@link #flush} sends what is queued. */
  void write(ByteBuf data);

  /** Sends what {@link #write} queued. */
  void flush();

  /** Closes the carrier; {@link Listener#onClosed} follows. */
  void close();

  /** What a pipe reports. Calls may come from any thread, one at a time. */
  interface Listener {
    /** Bytes from the server; the listener owns {@code data}. */
    void onData(ByteBuf data);

    /** The end of a batch of {@link #onData} calls: a good moment to flush them onwards. */
    default void onDataBatchEnd() {}

    /** The carrier is gone (closed by either side, reset, or failed). Called once. */
    void onClosed();
  }
}
