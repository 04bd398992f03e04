package org.ferry.it.crash;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.List;
import org.ferry.it.load.ServerProcess;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The short CI version of {@code integration-tests/crash-test.sh}: a real server process killed
 * with SIGKILL again and again under load loses no acknowledged send, strands none and delivers
 * none again after confirming its ack; and the harness does see loss when the server
 * acknowledges before writing (CrashLedgerTest shows it tells the three failures apart).
 */
class CrashHarnessTest {
  private static final int CYCLES = Integer.getInteger("ferry.crash.cycles", 10);

  @TempDir Path dir;

  private static ServerProcess.Command server(Path data, List<String> extra) {
    return ServerProcess.Command.fromClassPath(data, List.of("-Xmx256m"), extra);
  }

  @Test
  void acknowledgedSendsSurviveRepeatedKill9() throws Exception {
    CrashLedger.Result r = new CrashHarness(server(dir.resolve("server"), List.of()), CYCLES, 42).run();
    System.out.println(r.line());
    assertTrue(r.acked() >= 10L * CYCLES, "too little load to prove anything: " + r.line());
    assertEquals(0, r.lost(), r.line());
    assertEquals(0, r.stranded(), r.line());
    assertEquals(0, r.duplicates(), r.line());
    assertEquals(r.acked(), r.delivered(), r.line());
  }

  @Test
  void harnessReportsLossWhenTheServerAcknowledgesBeforeWriting() throws Exception {
    CrashLedger.Result r = new CrashHarness(
        server(dir.resolve("server"), List.of("--unsafe-ack-before-write")), 3, 42).run();
    System.out.println(r.line());
    assertTrue(r.lost() > 0, "the harness must notice acknowledged sends that were never written: " + r.line());
  }
}
