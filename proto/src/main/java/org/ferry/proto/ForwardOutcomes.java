package org.ferry.proto;

import com.google.protobuf.InvalidProtocolBufferException;
import java.nio.ByteBuffer;
import org.ferry.proto.v1.ForwardOutcome;

/**
 * A {@code ferry.v1.ForwardOutcome} as the envelope body the home server puts in a client's
 * forwarder mailbox: a 2-byte big-endian length, the serialized outcome, zeros up to the
 * smallest bucket ({@value #BODY_LENGTH} bytes). Not sealed: it goes from the home server to its
 * own client, over the client's TLS connection, and tells nothing the home server did not know.
 */
public final class ForwardOutcomes {
  /** Bytes of every outcome body: the smallest padding bucket. */
  public static final int BODY_LENGTH = PaddingBuckets.SIZES.get(0);

  private ForwardOutcomes() {}

  /**
   * @throws IllegalArgumentException if the outcome does not fit (its texts are too long)
   */
  public static byte[] toBody(ForwardOutcome outcome) {
    byte[] bytes = outcome.toByteArray();
    if (bytes.length > BODY_LENGTH - 2) {
      throw new IllegalArgumentException("outcome too long: " + bytes.length + " bytes");
    }
    return ByteBuffer.allocate(BODY_LENGTH).putShort((short) bytes.length).put(bytes).array();
  }

  /**
   * @throws InvalidProtocolBufferException if {@code body} is not an outcome body
   */
  public static ForwardOutcome fromBody(byte[] body) throws InvalidProtocolBufferException {
    if (body.length != BODY_LENGTH) {
      throw new InvalidProtocolBufferException("outcome body must be " + BODY_LENGTH + " bytes: " + body.length);
    }
    int length = ByteBuffer.wrap(body).getShort() & 0xffff;
    if (length > BODY_LENGTH - 2) {
      throw new InvalidProtocolBufferException("bad outcome length: " + length);
    }
    return ForwardOutcome.parseFrom(ByteBuffer.wrap(body, 2, length));
  }
}
