package org.ferry.ops.config;

import java.util.HashMap;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The line on which each top-level key of a TOML document (one that parsed already) is first
 * written: {@code key = ...}, {@code key.sub = ...} before any table header, or a table header
 * {@code [key]}, {@code [key.sub]}, {@code [[key]]}. The TOML parser keeps no positions for
 * values, and error messages must name the line.
 */
final class KeyLines {
  private static final Pattern KEY =
      Pattern.compile("^\\s*(?:\\[\\[?\\s*)?(?:([A-Za-z0-9_-]+)|\"((?:[^\"\\\\]|\\\\.)*)\"|'([^']*)')\\s*[=.\\]]");

  private final Map<String, Integer> lines = new HashMap<>();
  private Map.Entry<String, Integer> duplicate;

  KeyLines(String text) {
    String[] all = text.split("\r?\n", -1);
    boolean inTable = false;
    String openMultiline = null;
    for (int i = 0; i < all.length; i++) {
      String line = all[i];
      if (openMultiline != null) {
        if (count(line, openMultiline) % 2 == 1) {
          openMultiline = null;
        }
        continue;
      }
      String stripped = line.stripLeading();
      boolean header = stripped.startsWith("[");
      if (header) {
        inTable = true;
      }
      if (header || !inTable) {
        Matcher m = KEY.matcher(line);
        if (m.find()) {
          String key = m.group(1) != null ? m.group(1) : m.group(2) != null ? unescape(m.group(2)) : m.group(3);
          if (lines.putIfAbsent(key, i + 1) != null && duplicate == null && !line.stripLeading().startsWith("[[")) {
            duplicate = Map.entry(key, i + 1);
          }
        }
      }
      for (String delimiter : new String[] {"\"\"\"", "'''"}) {
        if (count(line, delimiter) % 2 == 1) {
          openMultiline = delimiter;
          break;
        }
      }
    }
  }

  /** The 1-based line of {@code key}'s first appearance, or 0 if not found. */
  int lineOf(String key) {
    return lines.getOrDefault(key, 0);
  }

  /**
   * The first top-level key written a second time, and that line. Only a hint for the parser's
   * "duplicate key" error: {@code a.b = 1} then {@code a.c = 2} is legal TOML and shows here too.
   */
  java.util.Optional<Map.Entry<String, Integer>> firstDuplicate() {
    return java.util.Optional.ofNullable(duplicate);
  }

  private static int count(String line, String delimiter) {
    int n = 0;
    for (int at = line.indexOf(delimiter); at >= 0; at = line.indexOf(delimiter, at + delimiter.length())) {
      n++;
    }
    return n;
  }

  private static String unescape(String quoted) {
    return quoted.replace("\\\"", "\"").replace("\\\\", "\\");
  }
}
