package org.ferry.sdk;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;
import org.signal.libsignal.protocol.IdentityKey;
import org.signal.libsignal.protocol.IdentityKeyPair;

class FerryClientSafetyNumberTest {
  @Test
  void bothSidesComputeTheSameSixtyDigitsAndAnotherKeyChangesThem() {
    IdentityKey alice = IdentityKeyPair.generate().getPublicKey();
    IdentityKey bob = IdentityKeyPair.generate().getPublicKey();
    IdentityKey mallory = IdentityKeyPair.generate().getPublicKey();
    String fromAlice = FerryClient.safetyNumber(alice, bob);
    assertEquals(fromAlice, FerryClient.safetyNumber(bob, alice));
    assertTrue(fromAlice.matches("(\\d{5} ){11}\\d{5}"), fromAlice);
    assertNotEquals(fromAlice, FerryClient.safetyNumber(alice, mallory));
  }
}
