package org.ferry.it;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.ferry.sdk.cli.ClientMain;

/**
 * Runs `ferry client` as its own process (a JVM from this test's class path), with the locale,
 * standard input and standard output a test chooses: what the in-process {@link Cli} cannot
 * show (argument decoding, the real standard streams, /dev/full).
 */
final class CliProcess {
  private CliProcess() {}

  /** The outcome of one run: exit code, stdout as bytes, stderr as text. */
  record Result(int exit, byte[] out, String err) {
    /** Stdout decoded as UTF-8, failing on any invalid byte. */
    String outText() {
      try {
        return StandardCharsets.UTF_8.newDecoder().decode(java.nio.ByteBuffer.wrap(out)).toString();
      } catch (java.nio.charset.CharacterCodingException e) {
        throw new AssertionError("stdout is not valid UTF-8", e);
      }
    }

    @Override
    public String toString() {
      return "exit " + exit + ", stderr: " + err;
    }
  }

  /** A locale-free environment plus {@code locale} as LANG (LC_ALL and LC_CTYPE removed). */
  static Map<String, String> locale(ProcessBuilder pb, String locale) {
    Map<String, String> env = pb.environment();
    env.keySet().removeIf(k -> k.startsWith("LC_") || k.equals("LANG") || k.equals("LANGUAGE"));
    env.put("LANG", locale);
    return env;
  }

  /** The java command line that runs the CLI's main with {@code args} after it. */
  static List<String> command(Path data, List<String> args) {
    List<String> command = new ArrayList<>(List.of(
        Path.of(System.getProperty("java.home"), "bin", "java").toString(),
        "-cp", System.getProperty("java.class.path"),
        ClientMain.class.getName(), "--data", data.toString()));
    command.addAll(args);
    return command;
  }

  /** Runs the CLI under {@code locale} with {@code stdin} as input; stdout is captured. */
  static Result run(String locale, byte[] stdin, Path data, String... args) {
    return run(new ProcessBuilder(command(data, List.of(args))), locale, stdin, null);
  }

  /** Runs {@code pb} under {@code locale}; stdout goes to {@code stdout} if given, else is captured. */
  static Result run(ProcessBuilder pb, String locale, byte[] stdin, Path stdout) {
    try {
      Path dir = Files.createTempDirectory("ferry-cli");
      Path in = dir.resolve("in");
      Path out = stdout != null ? stdout : dir.resolve("out");
      Path err = dir.resolve("err");
      Files.write(in, stdin);
      locale(pb, locale);
      Process p = pb.redirectInput(in.toFile()).redirectOutput(out.toFile()).redirectError(err.toFile()).start();
      if (!p.waitFor(120, TimeUnit.SECONDS)) {
        p.destroyForcibly();
        throw new AssertionError("ferry client did not finish: " + pb.command().subList(4, pb.command().size()));
      }
      byte[] captured = stdout != null ? new byte[0] : Files.readAllBytes(out);
      return new Result(p.exitValue(), captured, Files.readString(err, StandardCharsets.UTF_8));
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new AssertionError("interrupted", e);
    }
  }
}
