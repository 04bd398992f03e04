package org.ferry.sdk.internal.crypto;

import java.nio.ByteBuffer;
import org.ferry.proto.PaddingBuckets;
import org.signal.libsignal.protocol.InvalidMessageException;
import org.signal.libsignal.protocol.ecc.ECPrivateKey;
import org.signal.libsignal.protocol.ecc.ECPublicKey;

/**
 * Seals a libsignal message to a mailbox's seal key and pads it to a bucket size.
 *
 * <p>Inside the seal: {@code type (1) || length (4, big-endian) || message || zeros}. The seal
 * is libsignal's HPKE (X25519, a fresh ephemeral key per envelope) with the mailbox id as
 * associated data, so the server sees neither the sender's identity key nor which kind of
 * message it is, and cannot move an envelope to another mailbox unnoticed.
 */
public final class EnvelopeSealer {
  private static final String INFO = "ferry.v1.envelope";
  /** What the seal adds to its plaintext: the encapsulated key and the tag. */
  static final int SEAL_OVERHEAD = 49;
  private static final int HEADER = 5;

  private EnvelopeSealer() {}

  /** A decrypted seal: the libsignal message type and bytes. */
  public record Opened(int type, byte[] message) {}

  /** Seals {@code message}; the result's length is a bucket size. */
  public static byte[] seal(ECPublicKey sealKey, byte[] mailboxId, int type, byte[] message) {
    int bucket = PaddingBuckets.bucketFor(HEADER + message.length + SEAL_OVERHEAD);
    ByteBuffer padded = ByteBuffer.allocate(bucket - SEAL_OVERHEAD);
    padded.put((byte) type).putInt(message.length).put(message);
    byte[] sealed = sealKey.seal(padded.array(), INFO, mailboxId);
    if (sealed.length != bucket) {
      throw new IllegalStateException("seal overhead changed: " + (sealed.length - padded.capacity()));
    }
    return sealed;
  }

  /** The largest libsignal message that fits one envelope. */
  public static int maxMessage() {
    return PaddingBuckets.LARGEST - SEAL_OVERHEAD - HEADER;
  }

  public static Opened open(ECPrivateKey sealKey, byte[] mailboxId, byte[] body)
      throws InvalidMessageException {
    byte[] padded = sealKey.open(body, INFO, mailboxId);
    if (padded.length < HEADER) {
      throw new InvalidMessageException("sealed payload too short");
    }
    ByteBuffer b = ByteBuffer.wrap(padded);
    int type = b.get() & 0xff;
    int length = b.getInt();
    if (length < 0 || length > b.remaining()) {
      throw new InvalidMessageException("sealed payload length out of range");
    }
    byte[] message = new byte[length];
    b.get(message);
    return new Opened(type, message);
  }
}
