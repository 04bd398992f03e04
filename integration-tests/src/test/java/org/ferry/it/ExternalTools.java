package org.ferry.it;

import static org.junit.jupiter.api.Assertions.fail;

import java.io.File;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;
import org.junit.jupiter.api.Assumptions;

/**
 * Debian programs that carrier tests run for real (obfs4proxy, nginx, tinyproxy, microsocks).
 * Where one is missing the test is skipped with the package to install, unless the
 * environment says FERRY_REQUIRE_TOOLS=1 (as .ci/run does): then it fails.
 */
final class ExternalTools {
  private ExternalTools() {}

  static String require(String program, String debianPackage) {
    Optional<Path> found = find(program);
    if (found.isPresent()) {
      return found.get().toString();
    }
    String why = program + " is not installed (apt-get install " + debianPackage + ")";
    if ("1".equals(System.getenv("FERRY_REQUIRE_TOOLS"))) {
      fail(why);
    }
    Assumptions.abort(why);
    return program;
  }

  /**
   * Starts tinyproxy on a free loopback port, closed by {@code closer}; like many office proxies it
   * allows CONNECT only to port 443 (so no WebSocket to other ports either). Returns the port.
   */
  static int startTinyproxy(Path dir, Closer closer) throws java.io.IOException {
    String tinyproxy = require("tinyproxy", "tinyproxy");
    Path tp = Files.createDirectories(dir.resolve("tinyproxy"));
    int port = ExternalProcess.freePort();
    Files.writeString(tp.resolve("tinyproxy.conf"), """
        Port %d
        Listen 127.0.0.1
        Timeout 600
        Allow 127.0.0.1
        ConnectPort 443
        MaxClients 100
        LogLevel Critical
        PidFile "%s/tinyproxy.pid"
        """.formatted(port, tp));
    closer.add(ExternalProcess.start(java.util.List.of(tinyproxy, "-d", "-c", tp.resolve("tinyproxy.conf").toString()),
        tp.resolve("stdout.log"), port));
    return port;
  }

  static Optional<Path> find(String program) {
    String path = System.getenv().getOrDefault("PATH", "") + File.pathSeparator + "/usr/sbin" + File.pathSeparator + "/usr/bin";
    for (String dir : path.split(File.pathSeparator)) {
      Path p = Path.of(dir, program);
      if (Files.isExecutable(p)) {
        return Optional.of(p);
      }
    }
    return Optional.empty();
  }
}
