package org.ferry.sdk.cli;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Text the CLI reads from standard input or a file: strict UTF-8 whatever the locale, so that
 * secrets (message text, invitations) need not be given on the command line, where `ps` and
 * shell history show them. Failures are {@link IllegalArgumentException}s with one plain line
 * (the CLI exits 2), never the text itself.
 */
final class CliInput {
  /** U+FFFD REPLACEMENT CHARACTER: what a decoder leaves where it met bytes it could not read. */
  static final char REPLACEMENT = '\ufffd';

  private CliInput() {}

  /** All of {@code in}, as UTF-8; {@code source} names it in errors ("standard input"). */
  static String read(InputStream in, String source) {
    try {
      return decode(in.readAllBytes(), source);
    } catch (IOException e) {
      throw new IllegalArgumentException("cannot read " + source + ": " + e.getMessage(), e);
    }
  }

  /** All of {@code file}, as UTF-8. */
  static String read(Path file) {
    return read(file, file);
  }

  /** All of {@code file}, as UTF-8; errors name it as {@code shown} (as the user gave it). */
  static String read(Path file, Path shown) {
    try {
      return decode(Files.readAllBytes(file), "file " + shown);
    } catch (NoSuchFileException e) {
      throw new IllegalArgumentException("no such file: " + shown, e);
    } catch (IOException e) {
      throw new IllegalArgumentException("cannot read file " + shown + ": " + e.getMessage(), e);
    }
  }

  /**
   * One message read whole: a single final line break (LF or CRLF) is dropped, as the shell's
   * {@code $(...)} would, since {@code echo} and editors add one.
   */
  static String oneMessage(String text) {
    if (text.endsWith("\r\n")) {
      return text.substring(0, text.length() - 2);
    }
    return text.endsWith("\n") ? text.substring(0, text.length() - 1) : text;
  }

  /**
   * Several messages, each ended by a NUL character (as {@code find -print0} and
   * {@code xargs -0} use); the last may lack its NUL. Nothing is dropped from the messages.
   */
  static List<String> nulSeparated(String text) {
    List<String> messages = new ArrayList<>(List.of(text.split("\0", -1)));
    if (messages.get(messages.size() - 1).isEmpty()) {
      messages.remove(messages.size() - 1);
    }
    return messages;
  }

  /**
   * {@code text} unless it holds U+FFFD: text that reached the CLI already damaged by a decoder
   * (a terminal or a program that read it in the wrong encoding) is refused rather than sent.
   */
  static String undamaged(String text, String what) {
    if (text.indexOf(REPLACEMENT) >= 0) {
      throw new IllegalArgumentException(what + " contains U+FFFD, the mark a decoder leaves where "
          + "it could not read the original: it was damaged before it reached ferry (check that "
          + "your terminal or the program that made it uses UTF-8)");
    }
    return text;
  }

  /** {@code bytes} as UTF-8, refusing malformed input with the offset of the first bad byte. */
  static String decode(byte[] bytes, String source) {
    ByteBuffer buffer = ByteBuffer.wrap(bytes);
    try {
      return StandardCharsets.UTF_8.newDecoder()
          .onMalformedInput(CodingErrorAction.REPORT)
          .onUnmappableCharacter(CodingErrorAction.REPORT)
          .decode(buffer)
          .toString();
    } catch (CharacterCodingException e) {
      throw new IllegalArgumentException(source + " is not valid UTF-8 (first bad byte at offset "
          + buffer.position() + "); ferry reads text as UTF-8 whatever the locale");
    }
  }
}
