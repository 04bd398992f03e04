package org.ferry.sdk.internal.invite;

import com.google.protobuf.ByteString;
import com.google.protobuf.InvalidProtocolBufferException;
import java.time.Instant;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.regex.Pattern;
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

  /**
   * Parses an invitation as people paste it; throws INVALID_INVITATION saying what is wrong.
   * Does not check expiry.
   *
   * <p>Forgives what mail clients, chat apps and web pages do to a URI: the prefix in any case,
   * percent-encoding, angle brackets, quotes or punctuation around it, text before and after it,
   * line breaks inside it (also with {@code > } quote prefixes or quoted-printable soft breaks),
   * and invisible characters (zero-width spaces and joiners, soft hyphens, byte-order marks,
   * no-break spaces). Characters that cannot occur in the code are removed; when text follows
   * the code on the next line, the longest run of lines that reads as a complete code is taken.
   * A code that is still damaged is refused before anything is asked of a server.
   */
  public static Parsed parse(String uri) {
    Optional<String> code = findCode(uri);
    if (code.isEmpty()) {
      throw invalid("it does not start with " + PREFIX);
    }
    return read(code.get());
  }

  private static final Pattern LINE_BREAK = Pattern.compile("\\r\\n|[\\r\\n\\u0085\\u2028\\u2029]");
  private static final Pattern QUOTE_PREFIX = Pattern.compile("^[\\s>]*");
  private static final Pattern SOFT_BREAK = Pattern.compile("=?\\s*$");

  /**
   * The code (what follows the prefix) in {@code text}: the candidate that decodes completely,
   * else the longest one, for a message that says what is wrong with it.
   */
  private static Optional<String> findCode(String text) {
    StringBuilder joined = new StringBuilder();
    List<Integer> lineEnds = new ArrayList<>();
    for (String line : LINE_BREAK.split(percentDecoded(text), -1)) {
      String visible = withoutInvisibles(line);
      visible = QUOTE_PREFIX.matcher(visible).replaceFirst("");
      visible = SOFT_BREAK.matcher(visible).replaceFirst("");
      joined.append(visible);
      lineEnds.add(joined.length());
    }
    int at = joined.toString().toLowerCase(Locale.ROOT).indexOf(PREFIX);
    if (at < 0) {
      return Optional.empty();
    }
    int start = at + PREFIX.length();
    int end = start;
    while (end < joined.length() && isCodeChar(joined.charAt(end))) {
      end++;
    }
    String run = joined.substring(start, end);
    // Longest first: text on the lines after the code runs on into it once lines are joined.
    List<Integer> cuts = new ArrayList<>();
    cuts.add(end);
    for (int i = lineEnds.size() - 1; i >= 0; i--) {
      int cut = lineEnds.get(i);
      if (cut > start && cut < end) {
        cuts.add(cut);
      }
    }
    for (int cut : cuts) {
      String candidate = joined.substring(start, cut);
      if (decodesCompletely(candidate)) {
        return Optional.of(candidate);
      }
    }
    return Optional.of(run);
  }

  private static boolean isCodeChar(char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
  }

  /** Removes format characters (zero-width, soft hyphen, BOM, bidi marks) and no-break spaces. */
  private static String withoutInvisibles(String s) {
    StringBuilder b = new StringBuilder(s.length());
    s.codePoints().forEach(cp -> {
      int type = Character.getType(cp);
      boolean invisible = type == Character.FORMAT
          || (type == Character.SPACE_SEPARATOR && cp != ' ')
          || cp == 0x034F || cp == 0x115F || cp == 0x1160 || cp == 0x3164 || cp == 0xFFA0
          || (cp >= 0xFE00 && cp <= 0xFE0F);
      if (!invisible) {
        b.appendCodePoint(cp);
      }
    });
    return b.toString();
  }

  /** {@code %XX} sequences decoded as UTF-8; anything else, a stray {@code %} too, kept as it is. */
  private static String percentDecoded(String s) {
    if (s.indexOf('%') < 0) {
      return s;
    }
    java.io.ByteArrayOutputStream bytes = new java.io.ByteArrayOutputStream(s.length());
    StringBuilder out = new StringBuilder(s.length());
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      int hi = i + 2 < s.length() ? Character.digit(s.charAt(i + 1), 16) : -1;
      int lo = i + 2 < s.length() ? Character.digit(s.charAt(i + 2), 16) : -1;
      if (c == '%' && hi >= 0 && lo >= 0) {
        bytes.write(hi * 16 + lo);
        i += 2;
        continue;
      }
      out.append(new String(bytes.toByteArray(), StandardCharsets.UTF_8));
      bytes.reset();
      out.append(c);
    }
    out.append(new String(bytes.toByteArray(), StandardCharsets.UTF_8));
    return out.toString();
  }

  /** Whether {@code code} is canonical base64url of a code with nothing unknown or left over. */
  private static boolean decodesCompletely(String code) {
    try {
      byte[] raw = Base64.getUrlDecoder().decode(code);
      InvitationCode parsed = InvitationCode.parseFrom(raw);
      return parsed.getUnknownFields().asMap().isEmpty()
          && Arrays.equals(parsed.toByteArray(), raw)
          && Base64.getUrlEncoder().withoutPadding().encodeToString(raw).equals(code)
          && parsed.getMailboxId().size() == 32 && parsed.getSecret().size() == 32 && parsed.getExpiresAt() > 0;
    } catch (IllegalArgumentException | InvalidProtocolBufferException e) {
      return false;
    }
  }

  private static Parsed read(String text) {
    InvitationCode code;
    try {
      code = InvitationCode.parseFrom(Base64.getUrlDecoder().decode(text));
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
