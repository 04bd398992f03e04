package org.ferry.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

class ServerMainOptionsTest {
  @Test
  void durationsAreReadAsPeopleWriteThem() {
    ServerMain.DurationConverter c = new ServerMain.DurationConverter();
    assertEquals(Duration.ofDays(21), c.convert("21d"));
    assertEquals(Duration.ofHours(36), c.convert("36h"));
    assertEquals(Duration.ofMinutes(90), c.convert("90m"));
    assertEquals(Duration.ofSeconds(45), c.convert("45s"));
    for (String bad : new String[] {"", "21", "d", "-1d", "0d", "1w", "1.5d"}) {
      assertThrows(CommandLine.TypeConversionException.class, () -> c.convert(bad), bad);
    }
  }

  @Test
  void sizesTakeBinarySuffixesAndRejectNonsense() {
    ServerMain.SizeConverter c = new ServerMain.SizeConverter();
    assertEquals(1000L, c.convert("1000"));
    assertEquals(64L << 20, c.convert("64M"));
    assertEquals(4L << 30, c.convert("4G"));
    assertEquals(4L << 30, c.convert("4GiB"));
    assertEquals(1L << 40, c.convert("1t"));
    for (String bad : new String[] {"", "0", "-1G", "1.5G", "12X", "9999999999T"}) {
      assertThrows(CommandLine.TypeConversionException.class, () -> c.convert(bad), bad);
    }
  }

  @TempDir Path dir;

  private static final String FP = "A".repeat(43);

  /** Runs {@code ferry server ARGS --print-config}: exit code and what it printed. */
  private static String[] run(String... args) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    PrintStream oldOut = System.out;
    PrintStream oldErr = System.err;
    int code;
    try {
      System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
      System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
      code = new CommandLine(new ServerMain()).execute(args);
    } finally {
      System.setOut(oldOut);
      System.setErr(oldErr);
    }
    return new String[] {String.valueOf(code), out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8)};
  }

  @Test
  void federationPolicyComesFromFlagsOrTheConfigFileAndBadValuesNameTheirSource() throws Exception {
    Path file = Files.writeString(dir.resolve("server.toml"),
        "federation = \"allowlist\"\nfederation-allow = [\"" + FP + "\"]\npeer-rate = 10\n");
    String[] ok = run("--config", file.toString(), "--federation-deny", "B".repeat(43), "--print-config");
    assertEquals("0", ok[0], ok[2]);
    assertEquals(true, ok[1].contains("federation = \"allowlist\""), ok[1]);
    assertEquals(true, ok[1].contains("federation-allow = [\"" + FP + "\"]"), ok[1]);
    assertEquals(true, ok[1].contains("federation-deny = [\"" + "B".repeat(43) + "\"]"), ok[1]);
    String[] proxied = run("--federation-proxy", "socks5://127.0.0.1:9050", "--federation-bind", "127.0.0.2",
        "--print-config");
    assertEquals("0", proxied[0], proxied[2]);
    assertEquals(true, proxied[1].contains("federation-proxy = \"socks5://127.0.0.1:9050\""), proxied[1]);
    String[] badProxy = run("--federation-proxy", "http://127.0.0.1:3128", "--print-config");
    assertEquals("2", badProxy[0]);
    assertEquals(true, badProxy[2].contains("--federation-proxy: must be socks5://HOST:PORT"), badProxy[2]);
    String[] badBind = run("--federation-bind", "example.org", "--print-config");
    assertEquals("2", badBind[0]);
    assertEquals(true, badBind[2].contains("--federation-bind: must be an IP address"), badBind[2]);
    // An address this host does not have would hold every forwarded item until its ttl.
    String[] foreignBind = run("--federation-bind", "192.0.2.1", "--print-config");
    assertEquals("2", foreignBind[0]);
    assertEquals(true, foreignBind[2].contains("--federation-bind: '192.0.2.1' is not an address of this host"),
        foreignBind[2]);
    // A proxy password is never echoed; a port of 0 or a host that does not resolve is refused.
    String[] withPassword = run("--federation-proxy", "socks5://u:secretpw@127.0.0.1:9050", "--print-config");
    assertEquals("2", withPassword[0]);
    assertEquals(true, withPassword[2].contains("a user name or password is not supported"), withPassword[2]);
    assertEquals(false, withPassword[2].contains("secretpw"), withPassword[2]);
    assertEquals("2", run("--federation-proxy", "socks5://127.0.0.1:0", "--print-config")[0]);
    assertEquals("2", run("--federation-proxy", "socks5://no-such-host.invalid:9050", "--print-config")[0]);
    String[] badMode = run("--federation", "closed", "--print-config");
    assertEquals("2", badMode[0]);
    assertEquals(true, badMode[2].contains("--federation: must be open, allowlist or off"), badMode[2]);
    Path badFile = Files.writeString(dir.resolve("bad.toml"), "federation-deny = [\"nope\"]\n");
    String[] badFp = run("--config", badFile.toString(), "--print-config");
    assertEquals("2", badFp[0]);
    assertEquals(true, badFp[2].contains("line 1: federation-deny: not a key fingerprint"), badFp[2]);
  }
}
