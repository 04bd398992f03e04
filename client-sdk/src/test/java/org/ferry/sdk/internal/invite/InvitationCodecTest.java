package org.ferry.sdk.internal.invite;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.security.SecureRandom;
import java.time.Instant;
import java.util.Arrays;
import java.util.List;
import org.ferry.proto.BridgeLine;
import org.ferry.proto.ServerAddress;
import org.ferry.sdk.FerryException;
import org.junit.jupiter.api.Test;

class InvitationCodecTest {
  private static final SecureRandom RANDOM = new SecureRandom();

  private static byte[] random(int n) {
    byte[] b = new byte[n];
    RANDOM.nextBytes(b);
    return b;
  }

  private static InvitationCodec.Parsed sample(String host) {
    return new InvitationCodec.Parsed(
        new ServerAddress(host, 7443, random(32)), random(32), random(32), Instant.parse("2026-12-01T10:00:00Z"),
        List.of());
  }

  @Test
  void uriRoundTripsAndStaysUnder300CharactersForALongHostName() {
    InvitationCodec.Parsed inv = sample("ferry-home.some-ngo.example.org");
    String uri = InvitationCodec.encode(inv);
    assertTrue(uri.length() < 300, uri.length() + " characters: " + uri);
    InvitationCodec.Parsed back = InvitationCodec.parse(uri);
    assertEquals(inv.server(), back.server());
    assertArrayEquals(inv.mailboxId(), back.mailboxId());
    assertArrayEquals(inv.secret(), back.secret());
    assertEquals(inv.expiresAt(), back.expiresAt());
  }

  @Test
  void bridgeLinesTravelInTheUriAndAWebSocketAndAnObfs4LineStillFitAQrCode() {
    InvitationCodec.Parsed base = sample("203.0.113.7");
    List<BridgeLine> lines = List.of(
        BridgeLine.parse("ws wss://198.51.100.4:443/" + "k".repeat(22) + " pin=" + "A".repeat(43)),
        BridgeLine.parse("obfs4 198.51.100.4:8444 cert=" + "c".repeat(70) + " iat-mode=0"));
    InvitationCodec.Parsed inv = new InvitationCodec.Parsed(
        base.server(), base.mailboxId(), base.secret(), base.expiresAt(), lines);
    String uri = InvitationCodec.encode(inv);
    assertEquals(lines, InvitationCodec.parse(uri).bridges());
    // A version-40 QR code in byte mode at error correction level L holds 2,953 bytes.
    assertTrue(uri.length() < 700, uri.length() + " characters");
  }

  @Test
  void keysDerivedFromTheSecretAreDistinctPerPurpose() {
    InvitationCodec.Parsed inv = sample("127.0.0.1");
    assertFalse(Arrays.equals(inv.bundleKey(), inv.fetchToken()));
    assertFalse(Arrays.equals(inv.fetchToken(), inv.sendCapability()));
    assertArrayEquals(inv.sendCapability(), InvitationCodec.sendCapabilityOf(inv.secret()));
  }

  @Test
  void malformedUrisAreRefusedAsInvalidInvitations() {
    String good = InvitationCodec.encode(sample("127.0.0.1"));
    for (String bad : new String[] {
        "", "hello", "ferry:invite/", "ferry:invite/!!!", "https://example.org/x",
        good.substring(0, good.length() - 20), "ferry:invite/AAAA"}) {
      FerryException e = assertThrows(FerryException.class, () -> InvitationCodec.parse(bad), bad);
      assertEquals(FerryException.Reason.INVALID_INVITATION, e.reason());
    }
  }
}
