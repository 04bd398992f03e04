package org.ferry.sdk.internal.crypto;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import org.ferry.proto.PaddingBuckets;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.signal.libsignal.protocol.InvalidMessageException;
import org.signal.libsignal.protocol.ecc.ECKeyPair;

class EnvelopeSealerTest {
  private static final ECKeyPair KEY = ECKeyPair.generate();
  private static final byte[] MAILBOX = new byte[32];

  @ParameterizedTest
  @ValueSource(ints = {0, 1, 500, 970, 971, 1000, 4000, 16000, 60000, 65482})
  void everySealedEnvelopeIsExactlyABucketSizeAndOpensToTheSameMessage(int length) throws Exception {
    byte[] message = new byte[length];
    new Random(length).nextBytes(message);
    byte[] sealed = EnvelopeSealer.seal(KEY.getPublicKey(), MAILBOX, 3, message);
    assertTrue(PaddingBuckets.isBucketSize(sealed.length), "not a bucket: " + sealed.length);
    EnvelopeSealer.Opened opened = EnvelopeSealer.open(KEY.getPrivateKey(), MAILBOX, sealed);
    assertEquals(3, opened.type());
    assertArrayEquals(message, opened.message());
  }

  @Test
  void theSmallestBucketThatFitsIsUsed() {
    assertEquals(1024, EnvelopeSealer.seal(KEY.getPublicKey(), MAILBOX, 2, new byte[1024 - 54]).length);
    assertEquals(4096, EnvelopeSealer.seal(KEY.getPublicKey(), MAILBOX, 2, new byte[1024 - 53]).length);
  }

  @Test
  void anEnvelopeMovedToAnotherMailboxDoesNotOpen() {
    byte[] sealed = EnvelopeSealer.seal(KEY.getPublicKey(), MAILBOX, 2, new byte[10]);
    byte[] other = new byte[32];
    other[0] = 1;
    assertThrows(InvalidMessageException.class, () -> EnvelopeSealer.open(KEY.getPrivateKey(), other, sealed));
  }

  @Test
  void anEnvelopeSealedToAnotherKeyDoesNotOpen() {
    byte[] sealed = EnvelopeSealer.seal(ECKeyPair.generate().getPublicKey(), MAILBOX, 2, new byte[10]);
    assertThrows(InvalidMessageException.class, () -> EnvelopeSealer.open(KEY.getPrivateKey(), MAILBOX, sealed));
  }

  @Test
  void aMessageLargerThanTheLargestBucketIsRefused() {
    assertThrows(IllegalArgumentException.class,
        () -> EnvelopeSealer.seal(KEY.getPublicKey(), MAILBOX, 2, new byte[EnvelopeSealer.maxMessage() + 1]));
  }
}
