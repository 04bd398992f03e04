package org.ferry.proto;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.security.KeyPair;
import org.junit.jupiter.api.RepeatedTest;
import org.junit.jupiter.api.Test;

class OwnerKeysTest {
  private static final byte[] NONCE = {1, 2, 3};
  private static final byte[] MAILBOX = {4, 5, 6};

  @RepeatedTest(20)
  void encodedKeysDecodeToTheSameKeyAndVerifyTheirSignatures() {
    KeyPair pair = OwnerKeys.generate();
    byte[] raw = OwnerKeys.encode(pair.getPublic());
    assertEquals(32, raw.length);
    assertEquals(pair.getPublic(), OwnerKeys.decode(raw));
    byte[] sig = OwnerKeys.sign(pair.getPrivate(), OwnerKeys.RECEIVE_CONTEXT, NONCE, MAILBOX);
    assertTrue(OwnerKeys.verify(raw, sig, OwnerKeys.RECEIVE_CONTEXT, NONCE, MAILBOX));
  }

  @Test
  void aSignatureDoesNotVerifyForAnotherPurposeOrStatementOrKey() {
    KeyPair pair = OwnerKeys.generate();
    byte[] raw = OwnerKeys.encode(pair.getPublic());
    byte[] sig = OwnerKeys.sign(pair.getPrivate(), OwnerKeys.RECEIVE_CONTEXT, NONCE, MAILBOX);
    assertFalse(OwnerKeys.verify(raw, sig, OwnerKeys.PUT_INVITATION_CONTEXT, NONCE, MAILBOX));
    assertFalse(OwnerKeys.verify(raw, sig, OwnerKeys.RECEIVE_CONTEXT, MAILBOX, NONCE));
    assertFalse(OwnerKeys.verify(OwnerKeys.encode(OwnerKeys.generate().getPublic()), sig,
        OwnerKeys.RECEIVE_CONTEXT, NONCE, MAILBOX));
    assertFalse(OwnerKeys.verify(raw, new byte[63], OwnerKeys.RECEIVE_CONTEXT, NONCE, MAILBOX));
  }

  @Test
  void malformedKeysAreRefused() {
    assertThrows(IllegalArgumentException.class, () -> OwnerKeys.decode(new byte[31]));
    assertFalse(OwnerKeys.isValid(new byte[33]));
  }
}
