package org.ferry.it;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.ferry.sdk.cli.ClientMain;

/** Runs `ferry client` commands in this JVM, exactly as a user types them after the launcher. */
final class Cli {
  private Cli() {}

  record Result(int exit, String out, String err) {
    List<String> outLines() {
      return out.isEmpty() ? List.of() : List.of(out.split("\n"));
    }

    List<String> errLines() {
      return err.isEmpty() ? List.of() : List.of(err.split("\n"));
    }
  }

  static Result client(Path data, String... args) {
    List<String> all = new ArrayList<>(List.of("--data", data.toString()));
    all.addAll(List.of(args));
    StringWriter out = new StringWriter();
    StringWriter err = new StringWriter();
    int exit = ClientMain.run(all.toArray(String[]::new), new PrintWriter(out, true), new PrintWriter(err, true));
    return new Result(exit, out.toString(), err.toString());
  }

  /** Alice (in {@code a}) and Bob (in {@code b}) join {@code server}; Bob accepts Alice's invitation. */
  static void aliceInvitesBob(RunningServer server, Path a, Path b) {
    ok(a, "init", "--server", server.address().toString());
    ok(b, "init", "--server", server.address().toString());
    ok(b, "accept", ok(a, "invite", "--name", "bob").strip(), "--name", "alice");
  }

  /** Runs a command that must succeed and returns its stdout. */
  static String ok(Path data, String... args) {
    Result r = client(data, args);
    if (r.exit() != 0) {
      throw new AssertionError("ferry client " + String.join(" ", args) + " exited " + r.exit() + ": " + r.err());
    }
    return r.out();
  }
}
