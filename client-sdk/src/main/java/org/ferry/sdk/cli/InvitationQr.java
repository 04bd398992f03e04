package org.ferry.sdk.cli;

import com.google.zxing.Binarizer;
import com.google.zxing.BinaryBitmap;
import com.google.zxing.DecodeHintType;
import com.google.zxing.EncodeHintType;
import com.google.zxing.LuminanceSource;
import com.google.zxing.PlanarYUVLuminanceSource;
import com.google.zxing.ReaderException;
import com.google.zxing.WriterException;
import com.google.zxing.common.GlobalHistogramBinarizer;
import com.google.zxing.common.HybridBinarizer;
import com.google.zxing.qrcode.QRCodeReader;
import com.google.zxing.qrcode.decoder.ErrorCorrectionLevel;
import com.google.zxing.qrcode.encoder.ByteMatrix;
import com.google.zxing.qrcode.encoder.Encoder;
import com.google.zxing.qrcode.encoder.QRCode;
import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.EnumMap;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import javax.imageio.ImageIO;
import javax.imageio.ImageReadParam;
import javax.imageio.ImageReader;
import javax.imageio.stream.ImageInputStream;
import org.ferry.datadir.PrivateFiles;
import org.ferry.sdk.FerryException;
import org.ferry.sdk.internal.invite.InvitationCodec;

/**
 * Invitation URIs as QR codes (ISO/IEC 18004), through ZXing: drawn on a terminal, written as a
 * PNG image, and read back from a PNG or JPEG image (a screenshot or a photo of a screen).
 *
 * <p>Codes use error correction level M (about 15% of the code may be damaged) and the smallest
 * QR version that holds the URI, in byte mode without an ECI header (the URI is ASCII). A typical
 * invitation (about 150 characters; up to 700 with bridge lines) gives a code of 49 to 101
 * modules a side (versions 8 to 21). Every code has a quiet zone of 4 modules, the standard's minimum.
 *
 * <p>An invitation is a secret until it is used: the image is written owner-only and never over
 * an existing file, and nothing here logs a URI.
 */
final class InvitationQr {
  /** Width of the light border around a code, in modules (ISO/IEC 18004's minimum). */
  static final int QUIET_ZONE = 4;
  /** Pixels per module in a written PNG: a 300-character invitation gives 616 px a side. */
  static final int PNG_MODULE_PIXELS = 8;
  /**
   * Most pixels an image is decoded at; larger images (a 48 MP phone photo) are subsampled to
   * this on reading, which keeps memory under about 100 MiB whatever the file claims.
   */
  static final long MAX_DECODED_PIXELS = 16L * 1024 * 1024;

  private static final char UPPER = '\u2580'; // ▀
  private static final char LOWER = '\u2584'; // ▄
  private static final char FULL = '\u2588'; // █

  private InvitationQr() {}

  /**
   * The code drawn with Unicode half blocks (U+2580, U+2584, U+2588 and space), two module rows
   * per text line and one column per module, so modules come out about square in a usual
   * terminal font; each line ends with {@code \n}. A 300-character invitation needs 77 columns
   * and 39 lines.
   *
   * <p>Light modules (and the quiet zone) are drawn as blocks and dark modules as blanks: on a
   * terminal with a dark background, the usual one, this shows dark on light as a scanner
   * expects. On a light background the code shows as a negative, which most phone cameras read
   * too; where one does not, the PNG from {@link #writePng} is the way. (Colour escapes would
   * suit both backgrounds, but turn into noise wherever the output is saved or piped.)
   *
   * @throws IllegalArgumentException if {@code uri} is not a {@code ferry:invite/} URI or is too
   *     long for a QR code (about 2,300 characters at level M)
   */
  static String terminal(String uri) {
    ByteMatrix code = encode(uri);
    int size = code.getWidth() + 2 * QUIET_ZONE;
    StringBuilder text = new StringBuilder((size + 1) * (size + 1) / 2);
    for (int y = 0; y < size; y += 2) {
      for (int x = 0; x < size; x++) {
        boolean top = isLight(code, x, y);
        // Below the last row is the terminal's own (dark) background.
        boolean bottom = y + 1 < size && isLight(code, x, y + 1);
        text.append(top && bottom ? FULL : top ? UPPER : bottom ? LOWER : ' ');
      }
      text.append('\n');
    }
    return text.toString();
  }

  /**
   * Writes the code as a black-on-white PNG, {@value #PNG_MODULE_PIXELS} pixels per module with
   * the quiet zone, 1 bit per pixel. The file is complete or absent (written to a temporary file
   * beside it, synced, then linked into place), owner-only ({@code rw-------}), and never
   * replaces an existing file.
   *
   * @throws IllegalArgumentException if {@code file} exists already (it is left as it was), if
   *     it cannot be written (the directory is missing or not writable), or if {@code uri} is not
   *     a {@code ferry:invite/} URI or is too long for a QR code
   */
  static void writePng(String uri, Path file) {
    byte[] png = png(encode(uri));
    try {
      PrivateFiles.createNew(file.toAbsolutePath(), png);
    } catch (FileAlreadyExistsException e) {
      throw exists(file);
    } catch (IOException e) {
      throw cannotWrite(file, e);
    }
  }

  /**
   * Refuses early, before an invitation is made for nothing, a file {@link #writePng} would
   * refuse (it checks again when writing): one that exists, or one in a directory that is
   * missing or where no file can be made (permissions, a read-only or special file system).
   * Makes and removes an empty temporary file beside {@code file} to find out.
   *
   * @throws IllegalArgumentException if {@code file} could not be written, saying why
   */
  static void checkCanCreate(Path file) {
    if (Files.exists(file, java.nio.file.LinkOption.NOFOLLOW_LINKS)) {
      throw exists(file);
    }
    Path dir = file.toAbsolutePath().getParent();
    try {
      Files.delete(Files.createTempFile(dir, ".ferry-qr-", ".tmp"));
    } catch (IOException e) {
      throw cannotWrite(file, e);
    }
  }

  private static IllegalArgumentException cannotWrite(Path file, IOException e) {
    Path dir = file.toAbsolutePath().getParent();
    String why = !Files.isDirectory(dir) ? "its directory does not exist"
        : e instanceof java.nio.file.AccessDeniedException ? "no permission to make files in " + dir
        : "no file can be made in " + dir + " (" + e.getClass().getSimpleName()
            + (e.getMessage() == null ? "" : ": " + e.getMessage()) + ")";
    return new IllegalArgumentException("cannot write " + file + ": " + why, e);
  }

  private static IllegalArgumentException exists(Path file) {
    return new IllegalArgumentException(file + " exists already; ferry does not write an invitation over "
        + "a file: give a new name, or remove the old file first");
  }

  /**
   * The invitation URI in the QR code in {@code image}, a PNG or JPEG file (or any format the
   * JDK's ImageIO reads, such as GIF or BMP), exactly as the code holds it. The code may be
   * small, rotated or photographed at an angle (ZXing's TRY_HARDER), and light on dark as well
   * as dark on light. Images over {@value #MAX_DECODED_PIXELS} pixels are subsampled first.
   *
   * @throws IllegalArgumentException if the file is missing or unreadable, is not an image, or
   *     holds no QR code that can be read
   * @throws FerryException with reason {@link FerryException.Reason#INVALID_INVITATION} if the
   *     QR code holds something other than a well-formed Ferry invitation
   */
  static String decode(Path image) {
    BufferedImage picture = readImage(image);
    String text = readCode(picture).orElseThrow(() -> new IllegalArgumentException("no QR code found in "
        + image + "; try a sharper or larger image of the code, with its white border"));
    if (!text.toLowerCase(Locale.ROOT).contains(InvitationCodec.PREFIX)) {
      // What it holds is somebody else's text: not repeated here, it could be anything.
      throw new FerryException(FerryException.Reason.INVALID_INVITATION,
          "the QR code in " + image + " is not a Ferry invitation (it holds no " + InvitationCodec.PREFIX + " URI)");
    }
    try {
      InvitationCodec.parse(text);
    } catch (FerryException e) {
      throw new FerryException(e.reason(), "the QR code in " + image + " is " + e.getMessage(), e);
    }
    return text;
  }

  private static ByteMatrix encode(String uri) {
    if (!uri.startsWith(InvitationCodec.PREFIX) || !StandardCharsets.US_ASCII.newEncoder().canEncode(uri)) {
      throw new IllegalArgumentException("only a " + InvitationCodec.PREFIX + " URI is drawn as a QR code");
    }
    Map<EncodeHintType, Object> hints = new EnumMap<>(EncodeHintType.class);
    hints.put(EncodeHintType.CHARACTER_SET, StandardCharsets.ISO_8859_1.name());
    try {
      QRCode best = Encoder.encode(uri, ErrorCorrectionLevel.M, hints);
      // ZXing's finder-pattern search misses about 3 codes in 100 even in a perfect image, when
      // the data happens to mimic a finder pattern; phone scanners built on it would too. The
      // mask changes the pattern, not the content: take the first that reads at every size.
      for (int mask = -1; mask < QRCode.NUM_MASK_PATTERNS; mask++) {
        QRCode code = best;
        if (mask >= 0) {
          if (mask == best.getMaskPattern()) {
            continue;
          }
          hints.put(EncodeHintType.QR_MASK_PATTERN, mask);
          code = Encoder.encode(uri, ErrorCorrectionLevel.M, hints);
        }
        if (readsAtEveryScale(code.getMatrix(), uri)) {
          return code.getMatrix();
        }
      }
      return best.getMatrix(); // still readable, as a pure image (decode tries that too)
    } catch (WriterException e) {
      throw new IllegalArgumentException("the invitation is too long for a QR code ("
          + uri.length() + " characters)", e);
    }
  }

  /** Module sizes, in pixels, at which a code must read: a small photo, a screen, the PNG. */
  private static final int[] CHECKED_SCALES = {2, 3, 4, PNG_MODULE_PIXELS};

  /** Whether ZXing's general detector (not its pure-image shortcut) reads {@code code} back. */
  private static boolean readsAtEveryScale(ByteMatrix code, String uri) {
    for (int scale : CHECKED_SCALES) {
      int side = (code.getWidth() + 2 * QUIET_ZONE) * scale;
      byte[] luma = new byte[side * side];
      for (int y = 0; y < side; y++) {
        for (int x = 0; x < side; x++) {
          luma[y * side + x] = isLight(code, x / scale, y / scale) ? (byte) 0xFF : 0;
        }
      }
      LuminanceSource source = new PlanarYUVLuminanceSource(luma, side, side, 0, 0, side, side, false);
      if (!read(source, new HybridBinarizer(source), false).filter(uri::equals).isPresent()) {
        return false;
      }
    }
    return true;
  }

  /** Whether the module at (x, y) of the code with its quiet zone is light. */
  private static boolean isLight(ByteMatrix code, int x, int y) {
    int cx = x - QUIET_ZONE;
    int cy = y - QUIET_ZONE;
    boolean inside = cx >= 0 && cy >= 0 && cx < code.getWidth() && cy < code.getHeight();
    return !inside || code.get(cx, cy) != 1;
  }

  private static byte[] png(ByteMatrix code) {
    int modules = code.getWidth() + 2 * QUIET_ZONE;
    int side = modules * PNG_MODULE_PIXELS;
    BufferedImage img = new BufferedImage(side, side, BufferedImage.TYPE_BYTE_BINARY);
    int white = 0xFFFFFF;
    int black = 0x000000;
    for (int my = 0; my < modules; my++) {
      for (int mx = 0; mx < modules; mx++) {
        int rgb = isLight(code, mx, my) ? white : black;
        for (int py = 0; py < PNG_MODULE_PIXELS; py++) {
          for (int px = 0; px < PNG_MODULE_PIXELS; px++) {
            img.setRGB(mx * PNG_MODULE_PIXELS + px, my * PNG_MODULE_PIXELS + py, rgb);
          }
        }
      }
    }
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    try {
      if (!ImageIO.write(img, "png", out)) {
        throw new IllegalStateException("this Java runtime cannot write PNG images");
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e); // a ByteArrayOutputStream does not fail
    }
    return out.toByteArray();
  }

  private static BufferedImage readImage(Path file) {
    if (!Files.exists(file)) {
      throw new IllegalArgumentException("no such file: " + file);
    }
    if (!Files.isRegularFile(file)) {
      throw new IllegalArgumentException(file + " is not a file");
    }
    if (!Files.isReadable(file)) {
      throw new IllegalArgumentException("cannot read " + file + ": permission denied");
    }
    try (ImageInputStream in = ImageIO.createImageInputStream(file.toFile())) {
      Iterator<ImageReader> readers = in == null ? java.util.Collections.emptyIterator() : ImageIO.getImageReaders(in);
      if (!readers.hasNext()) {
        throw new IllegalArgumentException(file + " is not an image ferry can read; give a PNG or JPEG file");
      }
      ImageReader reader = readers.next();
      try {
        reader.setInput(in, true, true);
        long pixels = (long) reader.getWidth(0) * reader.getHeight(0);
        ImageReadParam param = reader.getDefaultReadParam();
        if (pixels > MAX_DECODED_PIXELS) {
          int step = (int) Math.ceil(Math.sqrt((double) pixels / MAX_DECODED_PIXELS));
          param.setSourceSubsampling(step, step, 0, 0);
        }
        return reader.read(0, param);
      } catch (IOException | RuntimeException e) {
        // Image decoders fail on damaged files in many ways; none of their messages helps here.
        throw new IllegalArgumentException(file + " could not be read as an image (is it damaged, "
            + "or cut short?)", e);
      } finally {
        reader.dispose();
      }
    } catch (IOException e) {
      throw new IllegalArgumentException("cannot read " + file + ": " + e.getMessage(), e);
    }
  }

  /**
   * The text of the first QR code found: as a clean image (a screenshot, our PNG) first, then
   * by ZXing's detector at several sizes (its finder-pattern search depends on the module
   * size), light on dark as well as dark on light.
   */
  private static Optional<String> readCode(BufferedImage picture) {
    int w = picture.getWidth();
    int h = picture.getHeight();
    byte[] luma = luminance(picture);
    LuminanceSource full = new PlanarYUVLuminanceSource(luma, w, h, 0, 0, w, h, false);
    for (LuminanceSource source : List.of(full, full.invert())) {
      Optional<String> text = read(source, new HybridBinarizer(source), true);
      if (text.isPresent()) {
        return text;
      }
    }
    for (double scale : SCALES) {
      if (w * scale < 21 || h * scale < 21 || (long) w * h * scale * scale > MAX_DECODED_PIXELS) {
        continue; // smaller than the smallest code, or too large to hold
      }
      LuminanceSource scaled = scale == 1 ? full : resized(luma, w, h, scale);
      // The hybrid binarizer suits photos (uneven light), the global one some flat screenshots;
      // the inverted image, a negative code (a terminal rendering on a light background).
      List<java.util.function.Supplier<Binarizer>> binarizers = List.of(
          () -> new HybridBinarizer(scaled),
          () -> new GlobalHistogramBinarizer(scaled),
          () -> new HybridBinarizer(scaled.invert()));
      for (var binarizer : binarizers) {
        Binarizer b = binarizer.get();
        Optional<String> text = read(b.getLuminanceSource(), b, false);
        if (text.isPresent()) {
          return text;
        }
      }
    }
    return Optional.empty();
  }

  /**
   * Sizes an image is read at: its own, smaller, and (only if small) twice as large, which lets
   * the detector find codes of about 3 pixels a module that it misses at their own size.
   */
  private static final double[] SCALES = {1, 2 / 3.0, 1 / 2.0, 1 / 3.0, 2};

  private static Optional<String> read(LuminanceSource source, Binarizer binarizer, boolean pure) {
    Map<DecodeHintType, Object> hints = new EnumMap<>(DecodeHintType.class);
    hints.put(pure ? DecodeHintType.PURE_BARCODE : DecodeHintType.TRY_HARDER, Boolean.TRUE);
    hints.put(DecodeHintType.CHARACTER_SET, StandardCharsets.ISO_8859_1.name());
    try {
      return Optional.of(new QRCodeReader().decode(new BinaryBitmap(binarizer), hints).getText());
    } catch (ReaderException e) {
      return Optional.empty();
    }
  }

  /** Grey levels of {@code picture}, row by row; transparency counts as white, as on a page. */
  private static byte[] luminance(BufferedImage picture) {
    int w = picture.getWidth();
    int h = picture.getHeight();
    byte[] luma = new byte[w * h];
    int[] row = new int[w];
    for (int y = 0; y < h; y++) {
      picture.getRGB(0, y, w, 1, row, 0, w);
      for (int x = 0; x < w; x++) {
        int c = row[x];
        int alpha = c >>> 24;
        // ITU-R BT.601 weights, as ZXing's RGBLuminanceSource uses.
        int grey = (306 * ((c >> 16) & 0xFF) + 601 * ((c >> 8) & 0xFF) + 117 * (c & 0xFF)) >> 10;
        luma[y * w + x] = (byte) ((grey * alpha + 0xFF * (0xFF - alpha)) / 0xFF);
      }
    }
    return luma;
  }

  /**
   * {@code luma} resized by {@code scale} in each direction: each pixel the mean of the block of
   * pixels it covers when shrinking, the nearest pixel when enlarging.
   */
  private static LuminanceSource resized(byte[] luma, int w, int h, double scale) {
    int sw = (int) (w * scale);
    int sh = (int) (h * scale);
    byte[] out = new byte[sw * sh];
    for (int y = 0; y < sh; y++) {
      int y0 = (int) (y / scale);
      int y1 = Math.max(y0 + 1, Math.min(h, (int) ((y + 1) / scale)));
      for (int x = 0; x < sw; x++) {
        int x0 = (int) (x / scale);
        int x1 = Math.max(x0 + 1, Math.min(w, (int) ((x + 1) / scale)));
        int sum = 0;
        for (int sy = y0; sy < y1; sy++) {
          for (int sx = x0; sx < x1; sx++) {
            sum += luma[sy * w + sx] & 0xFF;
          }
        }
        out[y * sw + x] = (byte) (sum / ((y1 - y0) * (x1 - x0)));
      }
    }
    return new PlanarYUVLuminanceSource(out, sw, sh, 0, 0, sw, sh, false);
  }
}
