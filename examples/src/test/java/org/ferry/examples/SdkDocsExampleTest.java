package org.ferry.examples;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * docs/sdk.md opens with the body of {@link AlwaysOnExample#chat}, which compiles here and runs
 * against a real server in integration-tests: this keeps the two from drifting apart.
 */
class SdkDocsExampleTest {
  private static final Path MODULE = Path.of(System.getProperty("basedir", "."));
  private static final Path DOC = MODULE.resolve("../docs/sdk.md");
  private static final Path SOURCE =
      MODULE.resolve("src/main/java/org/ferry/examples/AlwaysOnExample.java");

  @Test
  void theFirstJavaBlockOfSdkMdIsTheCompiledAlwaysOnExample() throws IOException {
    String doc = firstJavaBlock(Files.readAllLines(DOC, StandardCharsets.UTF_8));
    String code = markedRegion(Files.readAllLines(SOURCE, StandardCharsets.UTF_8));
    assertEquals(code, doc, "docs/sdk.md's first ```java block differs from the region between "
        + "'// docs/sdk.md:begin' and '// docs/sdk.md:end' in " + SOURCE.getFileName()
        + ": copy the code into the document (indentation may differ)");
  }

  @Test
  void sdkMdOpensWithTheAlwaysOnExample() throws IOException {
    List<String> lines = Files.readAllLines(DOC, StandardCharsets.UTF_8);
    int firstBlock = lines.indexOf("```java");
    int firstSection = lines.indexOf(lines.stream().filter(l -> l.startsWith("## ")).findFirst().orElse(""));
    assertTrue(firstBlock >= 0, "docs/sdk.md has no ```java block");
    assertTrue(firstSection < 0 || firstBlock < firstSection,
        "the always-on example must come before the first section of docs/sdk.md");
  }

  /** The lines of the first {@code ```java} block, indentation normalised. */
  static String firstJavaBlock(List<String> lines) {
    int start = lines.indexOf("```java");
    if (start < 0) {
      throw new AssertionError("docs/sdk.md has no ```java block");
    }
    int end = lines.subList(start + 1, lines.size()).indexOf("```");
    if (end < 0) {
      throw new AssertionError("docs/sdk.md's first ```java block is not closed");
    }
    return normalise(lines.subList(start + 1, start + 1 + end));
  }

  /** The lines strictly between the markers, indentation normalised. */
  static String markedRegion(List<String> lines) {
    int begin = indexOfTrimmed(lines, "// docs/sdk.md:begin");
    int end = indexOfTrimmed(lines, "// docs/sdk.md:end");
    if (begin < 0 || end < begin) {
      throw new AssertionError("AlwaysOnExample.java has no '// docs/sdk.md:begin' ... ':end' region");
    }
    return normalise(lines.subList(begin + 1, end));
  }

  private static int indexOfTrimmed(List<String> lines, String wanted) {
    for (int i = 0; i < lines.size(); i++) {
      if (lines.get(i).strip().equals(wanted)) {
        return i;
      }
    }
    return -1;
  }

  /** Removes the indentation common to the non-blank lines, and trailing blanks; nothing else. */
  private static String normalise(List<String> lines) {
    int common = lines.stream().filter(l -> !l.isBlank())
        .mapToInt(l -> l.length() - l.stripLeading().length()).min().orElse(0);
    StringBuilder text = new StringBuilder();
    for (String line : lines) {
      text.append(line.isBlank() ? "" : line.substring(common).stripTrailing()).append('\n');
    }
    return text.toString();
  }
}
