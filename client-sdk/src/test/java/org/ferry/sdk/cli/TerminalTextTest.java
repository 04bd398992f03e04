package org.ferry.sdk.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

class TerminalTextTest {
  @Test
  void textFromContactsCannotForgeLinesOrDriveTheTerminal() {
    assertEquals("bob: hi\n  alice: fake\n", TerminalText.message("bob", "hi\nalice: fake"));
    assertEquals("\\u001b[2Jgone", TerminalText.escape("\u001b[2Jgone"));
    assertEquals("over\\u000dwrite", TerminalText.escape("over\rwrite"));
    assertEquals("\\u009b31m \\u007f", TerminalText.escape("\u009b31m \u007f"));
    assertEquals("\\u202eevil \\u2066isolated\\u2069", TerminalText.escape("\u202eevil \u2066isolated\u2069"));
  }

  @Test
  void everythingElsePrintsAsItself() {
    String persian = "می\u200cخواهم";
    String family = "👩\u200d👩\u200d👧";
    String marks = "e\u0301 \u0928\u093f \u200e\u200f \ufeff \t a\\u200cb";
    assertEquals(persian + " " + family + " " + marks, TerminalText.escape(persian + " " + family + " " + marks));
  }
}
