package org.ferry.sdk.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

class ClientMainTest {
  @Test
  void textFromContactsCannotForgeLinesOrDriveTheTerminal() {
    assertEquals("hi\\nalice: fake", ClientMain.printable("hi\nalice: fake"));
    assertEquals("\\u001b[2Jgone", ClientMain.printable("\u001b[2Jgone"));
    assertEquals("a\\\\nb", ClientMain.printable("a\\nb"));
    assertEquals("\\u202eevil", ClientMain.printable("\u202eevil"));
    assertEquals("ça va? 👋", ClientMain.printable("ça va? 👋"));
  }
}
