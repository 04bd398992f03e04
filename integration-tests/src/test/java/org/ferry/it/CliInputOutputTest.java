package org.ferry.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * `ferry client` as real processes. Text goes through `send` and `receive` exactly, whatever the
 * locale: the CLI reads arguments, standard input and files as UTF-8, writes UTF-8, and escapes
 * only what could deceive or harm a terminal (see docs/sdk.md, "Text on the terminal"). Output
 * that cannot be written loses no message. Secrets (message text, invitations) can come from
 * standard input or a file instead of the command line, where every local user could read them
 * with `ps`.
 */
class CliInputOutputTest {
  private static final String LOCALE = "C.UTF-8";
  private static final byte[] NO_INPUT = new byte[0];

  /** Persian with a zero-width non-joiner, an emoji family joined by zero-width joiners, a flag. */
  static final String JOINED = "می\u200cخواهم 👩\u200d👩\u200d👧 🏳\ufe0f\u200d🌈 🇮🇷";

  @TempDir Path dir;
  private Path a;
  private Path b;
  private RunningServer server;

  @BeforeEach
  void startServer() throws Exception {
    a = dir.resolve("a");
    b = dir.resolve("b");
    server = new RunningServer(dir.resolve("server"));
  }

  @AfterEach
  void stopServer() {
    server.close();
  }

  private static List<String> fourFromBob(Path b) {
    List<String> texts = List.of("one", "two", "three", "four");
    texts.forEach(t -> Cli.ok(b, "send", "alice", t));
    return texts.stream().map(t -> "bob: " + t).toList();
  }

  @Test
  void receiveIntoAFullDeviceFailsAndKeepsEveryMessage() throws Exception {
    Cli.aliceInvitesBob(server, a, b);
    List<String> sent = fourFromBob(b);
    ProcessBuilder pb = new ProcessBuilder(CliProcess.command(a, List.of("receive", "--timeout", "1")));
    CliProcess.Result full = CliProcess.run(pb, LOCALE, NO_INPUT, Path.of("/dev/full"));
    assertNotEquals(0, full.exit(), full.toString());
    assertTrue(full.err().contains("could not write"), full.err());
    assertEquals(sent, Cli.client(a, "receive", "--timeout", "1").outLines());
  }

  @Test
  void receiveWithMaxTakesThatManyAndLeavesTheRest() throws Exception {
    Cli.aliceInvitesBob(server, a, b);
    List<String> sent = fourFromBob(b);
    // As docs/sdk.md tells scripts to do: take one, in a pipe into head.
    List<String> shell = new ArrayList<>(List.of("/bin/sh", "-c", "\"$@\" | head -1", "sh"));
    shell.addAll(CliProcess.command(a, List.of("receive", "--timeout", "1", "--max", "1")));
    CliProcess.Result one = CliProcess.run(new ProcessBuilder(shell), LOCALE, NO_INPUT, null);
    assertEquals(0, one.exit(), one.toString());
    List<String> first = List.of(one.outText().split("\n"));
    assertEquals(1, first.size(), one.outText());
    List<String> rest = Cli.client(a, "receive", "--timeout", "1").outLines();
    List<String> all = new ArrayList<>(first);
    all.addAll(rest);
    assertEquals(sent, all, "one taken, the other three kept, each exactly once");
  }

  @Test
  void sendTakesTheTextFromStandardInputOrAFile() throws Exception {
    Cli.aliceInvitesBob(server, a, b);
    CliProcess.Result piped = CliProcess.run(LOCALE, "from stdin\nsecond line\n".getBytes(StandardCharsets.UTF_8),
        b, "send", "alice", "-");
    assertEquals(0, piped.exit(), piped.toString());
    assertEquals(List.of("bob: from stdin", "  second line"), Cli.client(a, "receive", "--timeout", "1").outLines());

    Path file = dir.resolve("message.txt");
    Files.writeString(file, "from a file ✉", StandardCharsets.UTF_8);
    CliProcess.Result filed = CliProcess.run(LOCALE, NO_INPUT, b, "send", "alice", "--file", file.toString());
    assertEquals(0, filed.exit(), filed.toString());
    assertEquals(List.of("bob: from a file ✉"), Cli.client(a, "receive", "--timeout", "1").outLines());

    Files.write(file, new byte[] {'b', 'a', 'd', (byte) 0xff});
    CliProcess.Result bad = CliProcess.run(LOCALE, NO_INPUT, b, "send", "alice", "--file", file.toString());
    assertEquals(2, bad.exit(), bad.toString());
    assertTrue(bad.err().contains("not valid UTF-8"), bad.err());
    assertEquals(List.of(), Cli.client(a, "receive", "--timeout", "1").outLines());
  }

  @Test
  void acceptTakesTheInvitationFromStandardInput() throws Exception {
    Cli.ok(a, "init", "--server", server.address().toString());
    Cli.ok(b, "init", "--server", server.address().toString());
    String uri = Cli.ok(a, "invite", "--name", "bob");
    CliProcess.Result accepted = CliProcess.run(LOCALE, uri.getBytes(StandardCharsets.UTF_8),
        b, "accept", "-", "--name", "alice");
    assertEquals(0, accepted.exit(), accepted.toString());
    assertTrue(accepted.outText().startsWith("added alice"), accepted.outText());
    assertFalse(accepted.err().contains("ferry:invite"), "the invitation is not echoed");
    Cli.ok(b, "send", "alice", "hi");
    assertEquals(List.of("bob: hi"), Cli.client(a, "receive", "--timeout", "1").outLines());
  }

  @ParameterizedTest
  @ValueSource(strings = {"C", "C.UTF-8"})
  void argumentTextSurvivesTheLocale(String locale) throws Exception {
    Random random = seeded();
    String text = JOINED + " " + randomText(random, 300);
    Cli.aliceInvitesBob(server, a, b);
    CliProcess.Result sent = CliProcess.run(locale, new byte[0], b, "send", "alice", text);
    assertEquals(0, sent.exit(), sent.toString());
    CliProcess.Result received = CliProcess.run(locale, new byte[0], a, "receive", "--timeout", "1");
    assertEquals(0, received.exit(), received.toString());
    assertEquals(rendered("bob", text), received.outText());
    assertTrue(received.outText().contains(JOINED), "joiners print as themselves");
  }

  @ParameterizedTest
  @ValueSource(strings = {"C", "C.UTF-8"})
  void aThousandRandomStringsRoundTripUnderTheLocale(String locale) throws Exception {
    Random random = seeded();
    List<String> texts = new ArrayList<>();
    texts.add(JOINED);
    while (texts.size() < 1000) {
      texts.add(randomText(random, 1 + random.nextInt(24)));
    }
    ByteArrayOutputStream stdin = new ByteArrayOutputStream();
    for (String t : texts) {
      stdin.writeBytes(t.getBytes(StandardCharsets.UTF_8));
      stdin.write(0);
    }
    Cli.aliceInvitesBob(server, a, b);
    CliProcess.Result sent = CliProcess.run(locale, stdin.toByteArray(), b, "send", "alice", "--null", "-");
    assertEquals(0, sent.exit(), sent.toString());
    CliProcess.Result received = CliProcess.run(locale, new byte[0], a, "receive", "--timeout", "1");
    assertEquals(0, received.exit(), received.toString());
    // Messages received in the same millisecond come in no particular order: compare sorted.
    List<String> expected = new ArrayList<>(texts.stream().map(t -> rendered("bob", t)).toList());
    List<String> got = messages(received.outText());
    expected.sort(null);
    got.sort(null);
    assertEquals(expected.size(), got.size());
    for (int i = 0; i < expected.size(); i++) {
      assertEquals(expected.get(i), got.get(i), "message " + i);
    }
  }

  @Test
  void textDamagedBeforeItReachedTheCliIsRefused() throws Exception {
    Cli.aliceInvitesBob(server, a, b);
    // An argument in Latin-1, not UTF-8: "café" with a lone 0xE9 byte, given by the shell.
    List<String> command = CliProcess.command(b, List.of("send", "alice"));
    String script = "exec \"$@\" \"$(printf 'caf\\351')\"";
    List<String> shell = new ArrayList<>(List.of("/bin/sh", "-c", script, "sh"));
    shell.addAll(command);
    for (String locale : List.of("C", "C.UTF-8")) {
      CliProcess.Result latin1Arg = CliProcess.run(new ProcessBuilder(shell), locale, new byte[0], null);
      assertEquals(2, latin1Arg.exit(), latin1Arg.toString());
      assertTrue(latin1Arg.err().contains("not valid UTF-8"), latin1Arg.err());
    }
    CliProcess.Result latin1Stdin = CliProcess.run("C.UTF-8", new byte[] {'c', 'a', 'f', (byte) 0xe9}, b,
        "send", "alice", "-");
    assertEquals(2, latin1Stdin.exit(), latin1Stdin.toString());
    assertTrue(latin1Stdin.err().contains("not valid UTF-8"), latin1Stdin.err());
    // Text someone else already decoded badly: replacement characters where letters were.
    CliProcess.Result replaced = CliProcess.run("C.UTF-8", new byte[0], b, "send", "alice", "caf\ufffd");
    assertEquals(2, replaced.exit(), replaced.toString());
    assertTrue(replaced.err().contains("U+FFFD"), replaced.err());
    CliProcess.Result nothing = CliProcess.run("C", new byte[0], a, "receive", "--timeout", "1");
    assertEquals("", nothing.outText(), "nothing damaged was sent");
  }

  /** What receive prints for one message: the documented escaping, continuation lines indented. */
  static String rendered(String label, String text) {
    StringBuilder b = new StringBuilder(label).append(": ");
    text.codePoints().forEach(cp -> {
      boolean c0 = cp < 0x20 && cp != '\t' && cp != '\n';
      boolean c1 = cp >= 0x7f && cp <= 0x9f;
      boolean bidi = (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
      if (c0 || c1 || bidi) {
        b.append(String.format("\\u%04x", cp));
      } else if (cp == '\n') {
        b.append("\n  ");
      } else {
        b.appendCodePoint(cp);
      }
    });
    return b.append('\n').toString();
  }

  /** Splits receive's output into messages: a message's further lines start with two spaces. */
  static List<String> messages(String out) {
    List<String> messages = new ArrayList<>();
    for (String line : out.split("(?<=\n)")) {
      if (line.startsWith("  ") && !messages.isEmpty()) {
        messages.set(messages.size() - 1, messages.get(messages.size() - 1) + line);
      } else {
        messages.add(line);
      }
    }
    return messages;
  }

  private static Random seeded() {
    long seed = new Random().nextLong();
    System.out.println("CliInputOutputTest seed " + seed);
    return new Random(seed);
  }

  /**
   * {@code n} code points: half drawn from any plane (unassigned, private use and noncharacters
   * included), half from a randomly chosen general category; never a surrogate (not a scalar
   * value), never NUL (which neither argv nor `--null` input can carry; it is escaped anyway)
   * and never U+FFFD (the mark of text damaged by a decoder, which the CLI refuses).
   */
  static String randomText(Random random, int n) {
    StringBuilder b = new StringBuilder();
    while (b.codePointCount(0, b.length()) < n) {
      int cp;
      if (random.nextBoolean()) {
        cp = random.nextInt(17) * 0x10000 + random.nextInt(0x10000);
      } else {
        int category = CATEGORIES[random.nextInt(CATEGORIES.length)];
        do {
          cp = random.nextInt(random.nextInt(4) == 0 ? 0x110000 : 0x30000);
        } while (Character.getType(cp) != category);
      }
      if (cp == 0 || cp == 0xfffd || Character.getType(cp) == Character.SURROGATE) {
        continue;
      }
      b.appendCodePoint(cp);
    }
    return b.toString();
  }

  private static final int[] CATEGORIES = {
    Character.UPPERCASE_LETTER, Character.LOWERCASE_LETTER, Character.TITLECASE_LETTER,
    Character.MODIFIER_LETTER, Character.OTHER_LETTER, Character.NON_SPACING_MARK,
    Character.ENCLOSING_MARK, Character.COMBINING_SPACING_MARK, Character.DECIMAL_DIGIT_NUMBER,
    Character.LETTER_NUMBER, Character.OTHER_NUMBER, Character.SPACE_SEPARATOR,
    Character.LINE_SEPARATOR, Character.PARAGRAPH_SEPARATOR, Character.CONTROL, Character.FORMAT,
    Character.PRIVATE_USE, Character.DASH_PUNCTUATION, Character.START_PUNCTUATION,
    Character.END_PUNCTUATION, Character.CONNECTOR_PUNCTUATION, Character.OTHER_PUNCTUATION,
    Character.MATH_SYMBOL, Character.CURRENCY_SYMBOL, Character.MODIFIER_SYMBOL,
    Character.OTHER_SYMBOL, Character.INITIAL_QUOTE_PUNCTUATION, Character.FINAL_QUOTE_PUNCTUATION,
    Character.UNASSIGNED,
  };
}
