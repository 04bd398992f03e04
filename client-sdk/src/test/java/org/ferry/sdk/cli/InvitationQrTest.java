package org.ferry.sdk.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.zxing.BarcodeFormat;
import com.google.zxing.BinaryBitmap;
import com.google.zxing.RGBLuminanceSource;
import com.google.zxing.common.BitMatrix;
import com.google.zxing.common.HybridBinarizer;
import com.google.zxing.qrcode.QRCodeReader;
import com.google.zxing.qrcode.QRCodeWriter;
import java.awt.Color;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.geom.AffineTransform;
import java.awt.image.BufferedImage;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.SecureRandom;
import java.time.Instant;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import java.util.stream.Collectors;
import javax.imageio.ImageIO;
import org.ferry.proto.BridgeLine;
import org.ferry.proto.ServerAddress;
import org.ferry.sdk.FerryException;
import org.ferry.sdk.internal.invite.InvitationCodec;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class InvitationQrTest {
  private static final SecureRandom RANDOM = new SecureRandom();

  @TempDir Path dir;

  /** An invitation as {@code ferry client invite} makes one, with or without bridge lines. */
  private static String invitation(boolean withBridges) {
    return invitation(RANDOM, withBridges);
  }

  /** An invitation made with {@code random}'s ids and secret: a seeded one gives the same each run. */
  private static String invitation(java.util.Random random, boolean withBridges) {
    byte[][] bytes = new byte[3][32];
    for (byte[] b : bytes) {
      random.nextBytes(b);
    }
    List<BridgeLine> bridges = withBridges
        ? List.of(
            BridgeLine.parse("ws wss://198.51.100.4:443/" + "k".repeat(22) + " pin=" + "A".repeat(43)),
            BridgeLine.parse("obfs4 198.51.100.4:8444 cert=" + "c".repeat(70) + " iat-mode=0"))
        : List.of();
    return InvitationCodec.encode(new InvitationCodec.Parsed(
        new ServerAddress("ferry-home.some-ngo.example.org", 7443, bytes[0]), bytes[1], bytes[2],
        Instant.parse("2026-12-07T10:00:00Z"), bridges));
  }

  @ParameterizedTest(name = "with bridge lines: {0}")
  @ValueSource(booleans = {false, true})
  void anInvitationRoundTripsThroughAPngByteForByte(boolean withBridges) {
    String uri = invitation(withBridges);
    Path png = dir.resolve("invite.png");
    InvitationQr.writePng(uri, png);
    String back = InvitationQr.decode(png);
    assertArrayEquals(uri.getBytes(StandardCharsets.UTF_8), back.getBytes(StandardCharsets.UTF_8));
  }

  @ParameterizedTest(name = "with bridge lines: {0}")
  @ValueSource(booleans = {false, true})
  void theTerminalDrawingIsARealQrCodeDarkOnLightOnADarkTerminal(boolean withBridges) throws Exception {
    String uri = invitation(withBridges);
    String text = InvitationQr.terminal(uri);

    List<String> lines = List.of(text.split("\n"));
    assertTrue(text.endsWith("\n"));
    int width = lines.get(0).length();
    assertTrue(lines.stream().allMatch(l -> l.length() == width), "every line as wide as the code");
    assertEquals(Set.of(' ', '\u2580', '\u2584', '\u2588'),
        text.replace("\n", "").chars().mapToObj(c -> (char) c).collect(Collectors.toSet()));
    assertEquals((width + 1) / 2, lines.size(), "two module rows a line");
    // The quiet zone: 4 light modules on every side (two whole lines of blocks on top).
    assertEquals("\u2588".repeat(width), lines.get(0));
    assertEquals("\u2588".repeat(width), lines.get(1));
    assertTrue(lines.stream().allMatch(l -> l.startsWith("\u2588".repeat(4)) || l.startsWith("\u2580".repeat(4))));

    // As a dark-background terminal shows it, read by a reader that does not try the negative.
    assertEquals(uri, plainDecode(toImage(lightModules(text), 4)));
  }

  /**
   * Invitations (from fixed seeds) whose data, under the mask the QR encoder prefers, mimics a
   * finder pattern, so that ZXing's detector, as phone scanners use it, finds no code at some
   * module sizes (seed 195 only at 8 pixels, the PNG's; seed 177 at 3, 4 and 8).
   */
  @ParameterizedTest(name = "seed {0}")
  @ValueSource(longs = {47, 177, 195})
  void codesWhoseDataMimicsAFinderPatternStillReadWithAScannersDetector(long seed) throws Exception {
    String uri = invitation(new java.util.Random(seed), false);
    assertEquals(uri, plainDecode(pngOf(uri)), "the PNG");
    for (int scale : new int[] {2, 3, 4}) {
      assertEquals(uri, plainDecode(toImage(lightModules(InvitationQr.terminal(uri)), scale)), scale + " px a module");
    }
  }

  /** Fixed invitations (seeded), so that a run is repeatable; 60 random ones all read too. */
  @ParameterizedTest(name = "seed {0}")
  @ValueSource(longs = {1, 2, 3})
  void aScaledDownRotatedOrPhotographedCodeStillDecodes(long seed) throws Exception {
    String uri = invitation(new java.util.Random(seed), true);
    BufferedImage original = pngOf(uri);

    // Down to 4 pixels a module, turned a quarter and a bit, on a grey page, as a JPEG.
    Path turned = dir.resolve("photo.jpg");
    ImageIO.write(transformed(original, 0.5, Math.toRadians(90 + 17)), "jpg", turned.toFile());
    assertEquals(uri, InvitationQr.decode(turned));

    // Under 3 pixels a module, upside down and smoothed.
    Path upsideDown = dir.resolve("upside-down.png");
    ImageIO.write(transformed(original, 0.35, Math.PI), "png", upsideDown.toFile());
    assertEquals(uri, InvitationQr.decode(upsideDown));

    // A photo of a screen at 6 pixels a module, tilted the other way.
    Path tilted = dir.resolve("tilted.jpg");
    ImageIO.write(transformed(original, 0.75, Math.toRadians(-25)), "jpg", tilted.toFile());
    assertEquals(uri, InvitationQr.decode(tilted));
  }

  @Test
  void aCodeShownInNegativeDecodesToo() throws Exception {
    String uri = invitation(false);
    BufferedImage img = pngOf(uri);
    BufferedImage negative = new BufferedImage(img.getWidth(), img.getHeight(), BufferedImage.TYPE_INT_RGB);
    for (int y = 0; y < img.getHeight(); y++) {
      for (int x = 0; x < img.getWidth(); x++) {
        negative.setRGB(x, y, ~img.getRGB(x, y) & 0xFFFFFF);
      }
    }
    Path file = dir.resolve("negative.png");
    ImageIO.write(negative, "png", file.toFile());
    assertEquals(uri, InvitationQr.decode(file));
  }

  @Test
  void anImageWithoutAQrCodeSaysSo() throws Exception {
    BufferedImage gradient = new BufferedImage(300, 200, BufferedImage.TYPE_INT_RGB);
    for (int y = 0; y < 200; y++) {
      for (int x = 0; x < 300; x++) {
        gradient.setRGB(x, y, new Color(x * 255 / 300, y * 255 / 200, 128).getRGB());
      }
    }
    Path file = dir.resolve("holiday.png");
    ImageIO.write(gradient, "png", file.toFile());
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> InvitationQr.decode(file));
    assertEquals("no QR code found in " + file + "; try a sharper or larger image of the code, with its "
        + "white border", e.getMessage());
  }

  @Test
  void aFileThatIsNotAnImageSaysSo() throws Exception {
    Path file = dir.resolve("invite.txt");
    Files.writeString(file, invitation(false));
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> InvitationQr.decode(file));
    assertEquals(file + " is not an image ferry can read; give a PNG or JPEG file", e.getMessage());
    assertFalse(e.getMessage().contains("ferry:invite/"), "never the secret");
  }

  @Test
  void aDamagedImageSaysSo() throws Exception {
    Path png = dir.resolve("invite.png");
    InvitationQr.writePng(invitation(false), png);
    byte[] whole = Files.readAllBytes(png);
    Path cut = dir.resolve("cut.png");
    Files.write(cut, Arrays.copyOf(whole, whole.length / 2));
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> InvitationQr.decode(cut));
    assertEquals(cut + " could not be read as an image (is it damaged, or cut short?)", e.getMessage());
  }

  @Test
  void aMissingFileSaysSo() {
    Path file = dir.resolve("nowhere.png");
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> InvitationQr.decode(file));
    assertEquals("no such file: " + file, e.getMessage());
    Path directory = dir;
    e = assertThrows(IllegalArgumentException.class, () -> InvitationQr.decode(directory));
    assertEquals(dir + " is not a file", e.getMessage());
  }

  @Test
  void aQrCodeThatHoldsSomethingElseIsNotTakenForAnInvitation() throws Exception {
    Path other = dir.resolve("website.png");
    ImageIO.write(toImage(darkOnLight("https://example.org/some/page"), 6), "png", other.toFile());
    FerryException e = assertThrows(FerryException.class, () -> InvitationQr.decode(other));
    assertEquals(FerryException.Reason.INVALID_INVITATION, e.reason());
    assertEquals("the QR code in " + other + " is not a Ferry invitation (it holds no ferry:invite/ URI)",
        e.getMessage());

    String uri = invitation(false);
    Path damaged = dir.resolve("damaged.png");
    ImageIO.write(toImage(darkOnLight(uri.substring(0, uri.length() - 10)), 6), "png", damaged.toFile());
    e = assertThrows(FerryException.class, () -> InvitationQr.decode(damaged));
    assertEquals(FerryException.Reason.INVALID_INVITATION, e.reason());
    assertTrue(e.getMessage().startsWith("the QR code in " + damaged + " is not a valid Ferry invitation: "),
        e.getMessage());
  }

  @Test
  void anExistingFileIsNeverWrittenOver() throws Exception {
    Path file = dir.resolve("invite.png");
    Files.writeString(file, "my holiday photo");
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> InvitationQr.writePng(invitation(false), file));
    assertEquals(file + " exists already; ferry does not write an invitation over a file: give a new "
        + "name, or remove the old file first", e.getMessage());
    assertEquals("my holiday photo", Files.readString(file));
    assertEquals(List.of(file), listDir(), "no temporary file left behind");
    assertThrows(IllegalArgumentException.class, () -> InvitationQr.checkCanCreate(file));
  }

  @Test
  void theImageIsOwnerOnlyAndNothingElseIsLeftBeside() throws Exception {
    Path file = dir.resolve("invite.png");
    InvitationQr.writePng(invitation(false), file);
    assertEquals(PosixFilePermissions.fromString("rw-------"), Files.getPosixFilePermissions(file));
    assertEquals(List.of(file), listDir());
  }

  @Test
  void aPngInAMissingDirectorySaysSo() {
    Path file = dir.resolve("no-such-dir").resolve("invite.png");
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> InvitationQr.writePng(invitation(false), file));
    assertEquals("cannot write " + file + ": its directory does not exist", e.getMessage());
  }

  @Test
  void aPngWhereNoFileCanBeMadeIsRefusedBeforeAnInvitationIsMadeAndSaysWhy() {
    Path missing = dir.resolve("no-such-dir").resolve("invite.png");
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> InvitationQr.checkCanCreate(missing));
    assertEquals("cannot write " + missing + ": its directory does not exist", e.getMessage());
    Path special = Path.of("/proc/ferry-invite.png");
    IllegalArgumentException p = assertThrows(IllegalArgumentException.class, () -> InvitationQr.checkCanCreate(special));
    assertTrue(p.getMessage().startsWith("cannot write /proc/ferry-invite.png: no file can be made in /proc"), p.getMessage());
    InvitationQr.checkCanCreate(dir.resolve("fine.png"));
    assertEquals(List.of(), listNames(dir), "the check leaves nothing behind");
  }

  private static List<String> listNames(Path d) {
    try (java.util.stream.Stream<Path> s = java.nio.file.Files.list(d)) {
      return s.map(x -> x.getFileName().toString()).toList();
    } catch (java.io.IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
  }

  /** {@code ferry client ARGS} in this JVM, on a data directory that does not exist. */
  private ClientRun cli(String... args) {
    java.io.StringWriter out = new java.io.StringWriter();
    java.io.StringWriter err = new java.io.StringWriter();
    List<String> all = new java.util.ArrayList<>(List.of("--data", dir.resolve("no-client").toString()));
    all.addAll(List.of(args));
    int exit = ClientMain.run(all.toArray(String[]::new), new java.io.PrintWriter(out, true),
        new java.io.PrintWriter(err, true));
    return new ClientRun(exit, out.toString(), err.toString());
  }

  private record ClientRun(int exit, String out, String err) {}

  @Test
  void acceptTakesTheInvitationEitherAsUriOrAsImageNeverBothOrNone() throws Exception {
    Path png = dir.resolve("invite.png");
    InvitationQr.writePng(invitation(false), png);
    String expected = "ferry client: give the invitation either as URI (or - for standard input) or with "
        + "--qr-image FILE\n";
    ClientRun both = cli("accept", "-", "--qr-image", png.toString(), "--name", "alice");
    assertEquals(2, both.exit());
    assertEquals(expected, both.err());
    ClientRun none = cli("accept", "--name", "alice");
    assertEquals(2, none.exit());
    assertEquals(expected, none.err());
    // The image is read before the data directory is opened: its faults come first.
    ClientRun missing = cli("accept", "--qr-image", dir.resolve("gone.png").toString(), "--name", "alice");
    assertEquals(2, missing.exit());
    assertEquals("ferry client: no such file: " + dir.resolve("gone.png") + "\n", missing.err());
  }

  @Test
  void inviteRefusesAnExistingPngBeforeMakingAnInvitation() throws Exception {
    Path file = dir.resolve("invite.png");
    Files.writeString(file, "keep me");
    // No client lives in the data directory: only a check made before any is opened can answer.
    ClientRun r = cli("invite", "--name", "bob", "--qr-png", file.toString());
    assertEquals(2, r.exit());
    assertTrue(r.err().contains(file + " exists already"), r.err());
    assertEquals("", r.out());
    assertEquals("keep me", Files.readString(file));
  }

  @Test
  void onlyInvitationsAreDrawn() {
    assertThrows(IllegalArgumentException.class, () -> InvitationQr.terminal("https://example.org"));
    assertThrows(IllegalArgumentException.class, () -> InvitationQr.terminal("ferry:invite/é"));
  }

  /** The PNG that {@link InvitationQr#writePng} makes of {@code uri}, read back. */
  private BufferedImage pngOf(String uri) throws Exception {
    Path png = dir.resolve("written.png");
    InvitationQr.writePng(uri, png);
    return ImageIO.read(png.toFile());
  }

  private List<Path> listDir() throws Exception {
    try (var files = Files.list(dir)) {
      return files.toList();
    }
  }

  /** The modules a dark-background terminal shows light for {@code text}: its block halves. */
  private static BitMatrix lightModules(String text) {
    List<String> lines = List.of(text.split("\n"));
    int width = lines.get(0).length();
    BitMatrix light = new BitMatrix(width, 2 * lines.size());
    for (int y = 0; y < lines.size(); y++) {
      for (int x = 0; x < width; x++) {
        char c = lines.get(y).charAt(x);
        if (c == '\u2588' || c == '\u2580') {
          light.set(x, 2 * y);
        }
        if (c == '\u2588' || c == '\u2584') {
          light.set(x, 2 * y + 1);
        }
      }
    }
    return light;
  }

  /** A QR code of any text, made without Ferry's code: true bits are dark. */
  private static BitMatrix darkOnLight(String text) throws Exception {
    BitMatrix dark = new QRCodeWriter().encode(text, BarcodeFormat.QR_CODE, 0, 0);
    BitMatrix light = new BitMatrix(dark.getWidth(), dark.getHeight());
    for (int y = 0; y < dark.getHeight(); y++) {
      for (int x = 0; x < dark.getWidth(); x++) {
        if (!dark.get(x, y)) {
          light.set(x, y);
        }
      }
    }
    return light;
  }

  /** {@code light}'s true bits white, the rest black, {@code scale} pixels a module. */
  private static BufferedImage toImage(BitMatrix light, int scale) {
    BufferedImage img = new BufferedImage(light.getWidth() * scale, light.getHeight() * scale,
        BufferedImage.TYPE_INT_RGB);
    for (int y = 0; y < img.getHeight(); y++) {
      for (int x = 0; x < img.getWidth(); x++) {
        img.setRGB(x, y, light.get(x / scale, y / scale) ? 0xFFFFFF : 0x000000);
      }
    }
    return img;
  }

  /**
   * The text of the code in {@code img} as ZXing's general detector reads it (as a phone
   * scanner would), without the pure-image shortcut or trying the negative.
   */
  private static String plainDecode(BufferedImage img) throws Exception {
    int[] argb = img.getRGB(0, 0, img.getWidth(), img.getHeight(), null, 0, img.getWidth());
    BinaryBitmap bitmap = new BinaryBitmap(new HybridBinarizer(
        new RGBLuminanceSource(img.getWidth(), img.getHeight(), argb)));
    return new QRCodeReader().decode(bitmap, java.util.Map.of(com.google.zxing.DecodeHintType.TRY_HARDER, true))
        .getText();
  }

  /** {@code img} scaled and turned about its centre, smoothed, on a light grey page. */
  private static BufferedImage transformed(BufferedImage img, double scale, double radians) {
    int side = (int) Math.ceil(Math.max(img.getWidth(), img.getHeight()) * scale * 1.5);
    BufferedImage out = new BufferedImage(side, side, BufferedImage.TYPE_INT_RGB);
    Graphics2D g = out.createGraphics();
    try {
      g.setColor(new Color(0xDD, 0xDD, 0xDD));
      g.fillRect(0, 0, side, side);
      g.setRenderingHint(RenderingHints.KEY_INTERPOLATION, RenderingHints.VALUE_INTERPOLATION_BILINEAR);
      AffineTransform t = new AffineTransform();
      t.translate(side / 2.0, side / 2.0);
      t.rotate(radians);
      t.scale(scale, scale);
      t.translate(-img.getWidth() / 2.0, -img.getHeight() / 2.0);
      g.drawImage(img, t, null);
    } finally {
      g.dispose();
    }
    return out;
  }
}
