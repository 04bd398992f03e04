package org.ferry.sdk.cli;

import java.io.IOException;
import java.nio.charset.Charset;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The command-line arguments as UTF-8, whatever the locale.
 *
 * <p>Java 17 decodes {@code argv} with the locale's charset ({@code sun.jnu.encoding}): under
 * {@code LANG=C} every byte above 0x7F becomes U+FFFD before {@code main} runs, and a message
 * sent from there would be damaged for good. The `ferry` launcher therefore runs Java under a
 * UTF-8 locale; for Java started otherwise, on Linux the original bytes are read back from
 * {@code /proc/self/cmdline} (the program's arguments are its last entries) and decoded as
 * strict UTF-8. Where neither helps, an argument that arrived with U+FFFD in it is refused.
 */
final class Utf8Arguments {
  private static final Path CMDLINE = Path.of("/proc/self/cmdline");

  private Utf8Arguments() {}

  /**
   * {@code args} as UTF-8.
   *
   * @throws IllegalArgumentException (one line, no argument's content) if an argument is not
   *     valid UTF-8, or arrived damaged and its bytes cannot be read back
   */
  static String[] of(String[] args) {
    if (Arrays.stream(args).allMatch(Utf8Arguments::isAscii)) {
      return args; // The same in every charset the JVM can run under.
    }
    byte[] cmdline;
    try {
      cmdline = Files.readAllBytes(CMDLINE);
    } catch (IOException | UnsupportedOperationException | SecurityException e) {
      cmdline = null;
    }
    return of(args, cmdline, jnuCharset());
  }

  /** The charset Java decoded the arguments with. */
  private static Charset jnuCharset() {
    try {
      return Charset.forName(System.getProperty("sun.jnu.encoding", "UTF-8"));
    } catch (IllegalArgumentException e) {
      return StandardCharsets.UTF_8;
    }
  }

  /**
   * {@code args} as decoded by the JVM with {@code jnu}, read again from {@code cmdline} (the
   * NUL-terminated bytes of the whole command line, or null) when its last entries are what the
   * JVM decoded.
   */
  static String[] of(String[] args, byte[] cmdline, Charset jnu) {
    List<byte[]> raw = cmdline == null ? List.of() : lastEntries(cmdline, args.length);
    boolean matches = raw.size() == args.length;
    for (int i = 0; matches && i < args.length; i++) {
      matches = new String(raw.get(i), jnu).equals(args[i]);
    }
    if (!matches) {
      for (int i = 0; i < args.length; i++) {
        CliInput.undamaged(args[i], "argument " + (i + 1));
      }
      return args;
    }
    String[] decoded = new String[args.length];
    for (int i = 0; i < args.length; i++) {
      decoded[i] = CliInput.decode(raw.get(i), "argument " + (i + 1));
    }
    return decoded;
  }

  /** The last {@code n} NUL-terminated entries of {@code cmdline}, or fewer if it has fewer. */
  private static List<byte[]> lastEntries(byte[] cmdline, int n) {
    List<byte[]> entries = new ArrayList<>();
    int end = cmdline.length;
    if (end > 0 && cmdline[end - 1] == 0) {
      end--;
    }
    while (entries.size() < n && end >= 0) {
      int start = end - 1;
      while (start >= 0 && cmdline[start] != 0) {
        start--;
      }
      entries.add(0, Arrays.copyOfRange(cmdline, start + 1, end));
      end = start;
    }
    return entries;
  }

  private static boolean isAscii(String s) {
    return s.chars().allMatch(c -> c < 0x80);
  }
}
