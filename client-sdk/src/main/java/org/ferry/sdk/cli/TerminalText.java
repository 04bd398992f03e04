package org.ferry.sdk.cli;

import java.io.BufferedWriter;
import java.io.OutputStream;
import java.io.OutputStreamWriter;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;

/**
 * Text from the network, made safe to print on a terminal without changing what it says.
 *
 * <p>Everything prints as itself, in UTF-8 whatever the locale (joiners, marks, emoji, every
 * script), except what can deceive a reader or drive the terminal; each of those becomes
 * {@code \}{@code uXXXX} (four lower-case hex digits):
 * <ul>
 *   <li>C0 controls (U+0000 to U+001F) other than tab and line feed, DEL (U+007F) and the C1
 *       controls (U+0080 to U+009F): escape sequences, carriage returns, backspaces;
 *   <li>the bidirectional embeddings and overrides U+202A to U+202E and isolates U+2066 to U+2069
 *       (Unicode Technical Standard #39 and CVE-2021-42574, "Trojan Source"), which can make a
 *       line read differently from what it holds.
 * </ul>
 * A line feed in a message is printed, followed by two spaces, so that a message's further lines
 * are indented and no line of it can pass for another message.
 */
final class TerminalText {
  /** What starts each further line of a message. */
  static final String CONTINUATION = "  ";

  private TerminalText() {}

  /**
   * A writer of UTF-8 to {@code out}, whatever the locale, flushed at each {@code println};
   * {@link PrintWriter#checkError} reports failures (which {@code System.out} would hide).
   */
  static PrintWriter utf8(OutputStream out) {
    return new PrintWriter(new BufferedWriter(new OutputStreamWriter(out, StandardCharsets.UTF_8)), true);
  }

  /** One received message as {@code LABEL: TEXT}, ending in a line feed. */
  static String message(String label, String text) {
    return escape(label) + ": " + escape(text) + "\n";
  }

  /** {@code s} with what could deceive or harm a terminal escaped, as the class describes. */
  static String escape(String s) {
    StringBuilder b = new StringBuilder(s.length() + 8);
    s.codePoints().forEach(cp -> {
      if (cp == '\n') {
        b.append('\n').append(CONTINUATION);
      } else if (mustEscape(cp)) {
        b.append(String.format("\\u%04x", cp));
      } else {
        b.appendCodePoint(cp);
      }
    });
    return b.toString();
  }

  private static boolean mustEscape(int cp) {
    boolean control = (cp < 0x20 && cp != '\t') || (cp >= 0x7f && cp <= 0x9f);
    boolean bidi = (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
    return control || bidi;
  }
}
