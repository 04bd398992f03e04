package org.ferry.ops.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

class ConfigFileTest {
  @TempDir Path dir;

  @Command(name = "demo")
  static final class Demo implements Callable<Integer> {
    @Option(names = "--name", defaultValue = "x") String name;
    @Option(names = "--count", defaultValue = "3") int count;
    @Option(names = "--rate", defaultValue = "1.5") double rate;
    @Option(names = "--config") Path config;
    @Option(names = "--secret-mode", hidden = true) boolean hidden;
    @Option(names = "--peer") java.util.List<String> peers;

    @Override
    public Integer call() {
      return 0;
    }
  }

  private Demo load(String toml, String... args) throws Exception {
    Demo demo = new Demo();
    CommandLine cmd = new CommandLine(demo);
    cmd.parseArgs(args);
    ConfigFile.of(cmd, "--config").load(Files.writeString(dir.resolve("c.toml"), toml));
    return demo;
  }

  private String error(String toml) {
    return assertThrows(ConfigException.class, () -> load(toml)).getMessage()
        .replace(dir.resolve("c.toml").toString(), "FILE");
  }

  @Test
  void repeatableOptionTakesAnArrayOfStringsAndPrintsOneBack() throws Exception {
    Demo d = load("peer = [\"a\", \"b\"]\n");
    assertEquals(java.util.List.of("a", "b"), d.peers);
    assertEquals("FILE line 1: peer: expected an array of strings, such as [\"a\", \"b\"]; got a string",
        error("peer = \"a\"\n"));
    Demo demo = new Demo();
    CommandLine cmd = new CommandLine(demo);
    cmd.parseArgs("--peer", "x", "--peer", "y");
    assertEquals(true, ConfigFile.of(cmd, "--config").print().contains("peer = [\"x\", \"y\"]"));
  }

  @Test
  void valuesFromTheFileUnlessAFlagGaveThem() throws Exception {
    Demo d = load("name = \"from file\"\ncount = 7\nrate = 2\n", "--count", "9");
    assertEquals("from file", d.name);
    assertEquals(9, d.count);
    assertEquals(2.0, d.rate);
  }

  @Test
  void errorsNameTheLineOfTheKeyPastMultilineStringsAndTables() {
    assertEquals("FILE line 4: unknown key 'other'",
        error("name = \"\"\"\nother = 1\n\"\"\"\nother = 2\n"));
    assertEquals("FILE line 3: unknown key 'extra'", error("count = 1\n\n[extra]\nname = 1\n"));
    assertEquals("FILE line 2: unknown key 'tab.le'", error("#\n\"tab.le\" = 1\n"));
    assertEquals("FILE line 2: unknown key 'dotted'", error("\ndotted.key = 1\n"));
    assertEquals("FILE line 2: count: expected an integer; got a float", error("name = 'a'\ncount = 1.5\n"));
    assertEquals("FILE line 1: count: out of range: 4294967296", error("count = 4294967296\n"));
    assertEquals("FILE line 1: unknown key 'secret-mode'", error("secret-mode = true\n"));
    assertEquals("FILE line 1: unknown key 'config'", error("config = 'x'\n"));
    assertEquals("FILE line 1: unknown key 'Name' (did you mean 'name'?)", error("Name = 'x'\n"));
    assertEquals("FILE line 3: 'name' is set a second time", error("name = 'a'\ncount = 1\nname = 'b'\n"));
  }

  @Test
  void printedValuesAreTomlStrings() {
    assertEquals("\"a\\\"b\\\\c\\n\\u0001\"", ConfigFile.quote("a\"b\\c\n\u0001"));
  }
}
