package org.ferry.server.internal.util;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class SerializingExecutorTest {
  @Test
  void aFailedTaskIsLoggedOnOneLineAndTheTasksBehindItStillRun() {
    List<String> ran = new ArrayList<>();
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    PrintStream saved = System.err;
    System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
    try {
      SerializingExecutor serial = new SerializingExecutor(Runnable::run);
      serial.execute(() -> {
        throw new IllegalStateException("boom\nsecond line", new java.io.IOException("disk said no"));
      });
      serial.execute(() -> ran.add("after"));
    } finally {
      System.setErr(saved);
    }
    assertEquals(List.of("after"), ran);
    List<String> lines = err.toString(StandardCharsets.UTF_8).lines().toList();
    assertEquals(1, lines.size(), "one line per event:\n" + err);
    String line = lines.get(0);
    assertTrue(line.contains("task failed") && line.contains("IllegalStateException: boom second line")
        && line.contains("IOException: disk said no") && line.contains("SerializingExecutorTest"), line);
  }
}
