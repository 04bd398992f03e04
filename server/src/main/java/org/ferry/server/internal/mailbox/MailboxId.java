package org.ferry.server.internal.mailbox;

import com.google.protobuf.ByteString;
import java.security.SecureRandom;
import java.util.Arrays;
import org.ferry.server.internal.grpc.GrpcErrors;
import org.ferry.server.internal.util.Bytes;

/** A mailbox's name: 32 random bytes. */
public record MailboxId(byte[] bytes) {
  public static final int LENGTH = 32;

  public MailboxId {
    if (bytes.length != LENGTH) {
      throw new IllegalArgumentException("mailbox id must be 32 bytes: " + bytes.length);
    }
    bytes = bytes.clone();
  }

  public static MailboxId random(SecureRandom random) {
    byte[] b = new byte[LENGTH];
    random.nextBytes(b);
    return new MailboxId(b);
  }

  /** Parses a wire id, failing with INVALID_ARGUMENT. */
  public static MailboxId fromWire(ByteString wire) {
    if (wire.size() != LENGTH) {
      throw GrpcErrors.invalidArgument("mailbox_id must be %d bytes, got %d", LENGTH, wire.size());
    }
    return new MailboxId(wire.toByteArray());
  }

  @Override
  public byte[] bytes() {
    return bytes.clone();
  }

  public ByteString toWire() {
    return ByteString.copyFrom(bytes);
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof MailboxId other && Arrays.equals(bytes, other.bytes);
  }

  @Override
  public int hashCode() {
    return Arrays.hashCode(bytes);
  }

  /** Abbreviated, so that logs never carry a full mailbox id. */
  @Override
  public String toString() {
    return "mailbox:" + Bytes.shortHex(bytes);
  }
}
