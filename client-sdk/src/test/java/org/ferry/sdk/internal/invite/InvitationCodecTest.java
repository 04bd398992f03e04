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

  /** An invitation as another version may write it, with raw bridge lines. */
  private static String uriWithLines(List<String> lines) {
    InvitationCodec.Parsed base = sample("203.0.113.7");
    org.ferry.proto.v1.InvitationCode code = org.ferry.proto.v1.InvitationCode.newBuilder()
        .setVersion(InvitationCodec.VERSION)
        .setServer(base.server().toString())
        .setMailboxId(com.google.protobuf.ByteString.copyFrom(base.mailboxId()))
        .setSecret(com.google.protobuf.ByteString.copyFrom(base.secret()))
        .setExpiresAt(base.expiresAt().getEpochSecond())
        .addAllBridges(lines)
        .build();
    return InvitationCodec.PREFIX + java.util.Base64.getUrlEncoder().withoutPadding().encodeToString(code.toByteArray());
  }

  @Test
  void anInvitationFromANewerVersionStaysUsableAndKeepsEveryLineItCanUse() {
    String cert = "c".repeat(70);
    String uri = uriWithLines(List.of(
        "ws wss://198.51.100.4:443/secretpath pin=" + "A".repeat(43) + " fronting=cdn.example",
        "meek https://cdn.example/x front=y",
        "obfs4\t198.51.100.4:8444\u00a0cert=" + cert + " iat-mode=0 seed=42",
        "obfs4 198.51.100.4:8445 cert=" + cert + " iat-mode=x"));
    InvitationCodec.Parsed parsed = InvitationCodec.parse(uri);
    assertEquals(List.of(
        BridgeLine.parse("ws wss://198.51.100.4:443/secretpath pin=" + "A".repeat(43)),
        BridgeLine.parse("obfs4 198.51.100.4:8444 cert=" + cert + " iat-mode=0")), parsed.bridges());
  }

  @Test
  void contactCardsAndInvitationsReadLinesAlikeLeavingOutOnlyWhatCannotBeUsed() {
    List<BridgeLine> kept = InvitationCodec.readBridges(List.of(
        "direct 198.51.100.4:7443 via=somewhere", "snowflake", "ws wss://1.2.3.4:443/", "poll http://[0:0:0:0:0:0:0:1]:80/s"),
        "a contact card");
    assertEquals(List.of(BridgeLine.parse("direct 198.51.100.4:7443"), BridgeLine.parse("poll http://[::1]:80/s")), kept);
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

  private static void assertSameInvitation(InvitationCodec.Parsed expected, String text) {
    InvitationCodec.Parsed back;
    try {
      back = InvitationCodec.parse(text);
    } catch (FerryException e) {
      throw new AssertionError("refused " + java.util.Arrays.toString(text.codePoints().toArray()) + ": " + e.getMessage(), e);
    }
    assertArrayEquals(expected.mailboxId(), back.mailboxId());
    assertArrayEquals(expected.secret(), back.secret());
    assertEquals(expected.server(), back.server());
    assertEquals(expected.bridges(), back.bridges());
  }

  /** Every way mail clients, chat apps and web pages are known to change a pasted URI. */
  @Test
  void anInvitationSurvivesWhatTransportsDoToIt() {
    InvitationCodec.Parsed base = sample("ferry-home.some-ngo.example.org");
    InvitationCodec.Parsed inv = new InvitationCodec.Parsed(base.server(), base.mailboxId(), base.secret(),
        base.expiresAt(), List.of(BridgeLine.parse("ws wss://198.51.100.4:443/" + "k".repeat(22) + " pin=" + "A".repeat(43))));
    String uri = InvitationCodec.encode(inv);
    String code = uri.substring(InvitationCodec.PREFIX.length());
    String a = code.substring(0, 40);
    String b = code.substring(40, 110);
    String c = code.substring(110);
    List<String> mangled = List.of(
        uri + ".", uri + ",", uri + ")", uri + "!", uri + "\"", "\"" + uri + "\".", uri + "...",
        "<" + uri + ">", "Join me: <" + uri + ">.", "(" + uri + ")",
        "FERRY:INVITE/" + code, "Ferry:Invite/" + code,
        uri.replace(":", "%3A").replace("/", "%2F"), "ferry%3ainvite%2f" + code,
        "ferry:invite/" + a + "\n" + b + "\n" + c,
        "ferry:invite/" + a + "\r\n" + b + "\r\n" + c + "\r\n",
        "> ferry:invite/" + a + "\n> " + b + "\n> " + c,
        ">> ferry:invite/" + a + "\n>> " + b + "\n>>" + c + "\n>> \n>> See you",
        "ferry:invite/" + a + "\n" + b + "\n" + c + "\nSee you on Friday",
        "ferry:invite/" + a + "=\n" + b + "=\n" + c,
        "ferry:invite/" + a + "\u200b" + b + "\u200b" + c,
        "ferry:invite/" + a + "\u00ad" + b + "\u00ad" + c,
        "\ufeff" + uri, uri + "\ufeff",
        "ferry:invite/" + a + "\u00a0" + b + "\u202f" + c,
        "\u00a0\u2060" + uri + "\u200d\u00a0",
        "ferry:in\u200bvite/" + code,
        "  " + uri + "  \n",
        uri + " (valid for 7 days)",
        uri.replace(":", "%3A").replace("/", "%2F").replace(code.substring(5, 6), "%" + String.format("%02X", (int) code.charAt(5))));
    for (String text : mangled) {
      assertSameInvitation(inv, text);
    }
  }

  @Test
  void aTrulyDamagedCodeIsStillRefused() {
    String uri = InvitationCodec.encode(sample("127.0.0.1"));
    String code = uri.substring(InvitationCodec.PREFIX.length());
    // A character changed inside the secret cannot be seen here: the inviter's server refuses
    // its fetch token then, and nothing is used up (see the integration tests).
    for (String bad : new String[] {
        InvitationCodec.PREFIX + code.substring(0, code.length() - 3),
        InvitationCodec.PREFIX + code.substring(0, 40) + "\n" + code.substring(60),
        "ferry:invitation/" + code,
        code}) {
      FerryException e = assertThrows(FerryException.class, () -> InvitationCodec.parse(bad), bad);
      assertEquals(FerryException.Reason.INVALID_INVITATION, e.reason());
    }
  }
}
