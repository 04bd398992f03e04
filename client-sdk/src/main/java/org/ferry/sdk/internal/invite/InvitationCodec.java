package org.ferry.sdk.internal.invite;

import com.google.protobuf.ByteString;
import com.google.protobuf.InvalidProtocolBufferException;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import org.ferry.proto.BridgeLine;
import org.ferry.proto.ServerAddress;
import org.ferry.proto.v1.InvitationCode;
import org.ferry.sdk.FerryException;
import org.ferry.sdk.internal.crypto.Kdf;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The invitation URI, {@code ferry:invite/<base64url(InvitationCode)>}, and the keys derived
 * from its secret. Only the URI's holder can fetch and read the bundle and send to the
 * invitation's mailbox; the server sees only hashes of what it needs to check.
 */
public final class InvitationCodec {
  private static final Logger log = LoggerFactory.getLogger(InvitationCodec.class);
  public static final String PREFIX = "ferry:invite/";
  static final int VERSION = 1;
  /** Most bridge lines an invitation carries: it has to fit a QR code. */
  public static final int MAX_BRIDGES = 4;

  private InvitationCodec() {}

  /** A parsed, well-formed invitation. */
  public record Parsed(ServerAddress server, byte[] mailboxId, byte[] secret, Instant expiresAt,
      List<BridgeLine> bridges) {
    public byte[] bundleKey() {
      return Kdf.derive(secret, "ferry.v1.invite.bundle-key", 32);
    }

    public byte[] fetchToken() {
      return Kdf.derive(secret, "ferry.v1.invite.fetch-token", 32);
    }

    public byte[] sendCapability() {
      return sendCapabilityOf(secret);
    }
  }

  /** The send capability of an invitation's mailbox, derived from its secret. */
  public static byte[] sendCapabilityOf(byte[] secret) {
    return Kdf.derive(secret, "ferry.v1.invite.send-capability", 32);
  }

  public static String encode(Parsed invitation) {
    InvitationCode code =
        InvitationCode.newBuilder()
            .setVersion(VERSION)
            .setServer(invitation.server().toString())
            .setMailboxId(ByteString.copyFrom(invitation.mailboxId()))
            .setSecret(ByteString.copyFrom(invitation.secret()))
            .setExpiresAt(invitation.expiresAt().getEpochSecond())
            .addAllBridges(invitation.bridges().stream().limit(MAX_BRIDGES).map(BridgeLine::toString).toList())
            .build();
    return PREFIX + Base64.getUrlEncoder().withoutPadding().encodeToString(code.toByteArray());
  }

  /** Parses a URI; throws INVALID_INVITATION saying what is wrong. Does not check expiry. */
  public static Parsed parse(String uri) {
    String text = uri.trim();
    if (!text.startsWith(PREFIX)) {
      throw invalid("it does not start with " + PREFIX);
    }
    InvitationCode code;
    try {
      code = InvitationCode.parseFrom(Base64.getUrlDecoder().decode(text.substring(PREFIX.length())));
    } catch (IllegalArgumentException | InvalidProtocolBufferException e) {
      throw invalid("it is damaged (was it copied whole?)");
    }
    if (code.getVersion() != VERSION) {
      throw invalid("it is version " + code.getVersion() + "; this client reads version " + VERSION);
    }
    if (code.getMailboxId().size() != 32 || code.getSecret().size() != 32 || code.getExpiresAt() <= 0) {
      throw invalid("it is incomplete");
    }
    ServerAddress server;
    try {
      server = ServerAddress.parse(code.getServer());
    } catch (IllegalArgumentException e) {
      throw invalid("its server address is malformed");
    }
    if (code.getBridgesCount() > MAX_BRIDGES) {
      throw invalid("it has more than " + MAX_BRIDGES + " bridge lines");
    }
    List<BridgeLine> bridges = readBridges(code.getBridgesList(), "an invitation");
    return new Parsed(
        server,
        code.getMailboxId().toByteArray(),
        code.getSecret().toByteArray(),
        Instant.ofEpochSecond(code.getExpiresAt()),
        bridges);
  }

  /**
   * The lines of {@code texts} (from an invitation or a contact card, written by any version)
   * that this version can use. What it leaves out is logged as a note, without the lines'
   * secrets: unknown parameters, lines for unknown carriers, and malformed lines, which cost
   * only themselves, never the rest.
   *
   * @param source where the lines come from, for the notes ("an invitation")
   */
  public static List<BridgeLine> readBridges(List<String> texts, String source) {
    List<BridgeLine> lines = new ArrayList<>();
    for (String text : texts) {
      try {
        BridgeLine.Reading r = BridgeLine.read(text);
        r.notes().forEach(note -> log.info("bridge line in {}: {}", source, note));
        r.line().ifPresent(lines::add);
      } catch (BridgeLine.Malformed e) {
        log.warn("bridge line in {}: skipped a malformed line ({})", source, e.reason());
      }
    }
    return List.copyOf(lines);
  }

  private static FerryException invalid(String why) {
    return new FerryException(FerryException.Reason.INVALID_INVITATION, "not a valid Ferry invitation: " + why);
  }
}
