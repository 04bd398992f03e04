package org.ferry.ops.log;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.logging.Level;
import org.junit.jupiter.api.Test;

class OneLineLogsTest {
  @Test
  void aFailureAndItsCausesAreDescribedOnOneLine() {
    Exception e = new IllegalStateException("write\nfailed", new IOException("No space left\r\non device"));
    String line = OneLineLogs.describe(e);
    assertFalse(line.contains("\n") || line.contains("\r"), line);
    assertTrue(line.startsWith("IllegalStateException: write failed (at org.ferry.ops.log.OneLineLogsTest."), line);
    assertTrue(line.contains("; caused by IOException: No space left on device (at "), line);
  }

  @Test
  void aLongChainIsCut() {
    Throwable t = new RuntimeException("0");
    for (int i = 1; i < 10; i++) {
      t = new RuntimeException(Integer.toString(i), t);
    }
    assertTrue(OneLineLogs.describe(t).endsWith("; ..."), OneLineLogs.describe(t));
  }

  @Test
  void aCycleOfCausesIsDescribedOnce() {
    Exception a = new Exception("a");
    Exception b = new Exception("b", a);
    a.initCause(b);
    String line = OneLineLogs.describe(b);
    assertEquals(1, line.split("caused by", -1).length - 1, line);
  }

  @Test
  void javaUtilLoggingComesOutAsOneSlf4jLinePerRecord() {
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    PrintStream saved = System.err;
    System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
    try {
      OneLineLogs.routeJavaUtilLogging();
      java.util.logging.Logger grpc = java.util.logging.Logger.getLogger("io.grpc.SomeTransport");
      grpc.log(Level.SEVERE, "transport failed", new RuntimeException("reset\nby peer"));
      grpc.log(Level.FINE, "too fine to show");
    } finally {
      System.setErr(saved);
    }
    List<String> lines = err.toString(StandardCharsets.UTF_8).lines().toList();
    assertEquals(1, lines.size(), err.toString(StandardCharsets.UTF_8));
    assertTrue(lines.get(0).contains("ERROR io.grpc.SomeTransport - transport failed: RuntimeException: reset by peer"),
        lines.get(0));
  }
}
