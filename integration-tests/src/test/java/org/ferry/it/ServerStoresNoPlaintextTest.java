package org.ferry.it;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** What the server writes to disk holds no message text, labels or identity keys. */
class ServerStoresNoPlaintextTest {
  @TempDir Path dir;

  @Test
  void theServersDataDirectoryNeverContainsASentMessagesPlaintext() throws Exception {
    String secret = "the-meeting-is-at-the-old-library-at-nine";
    Path serverData = dir.resolve("server");
    Path a = dir.resolve("a");
    Path b = dir.resolve("b");
    try (RunningServer server = new RunningServer(serverData)) {
      Cli.ok(a, "init", "--server", server.address().toString());
      Cli.ok(b, "init", "--server", server.address().toString());
      Cli.ok(b, "accept", Cli.ok(a, "invite", "--name", "bob-the-source").strip(), "--name", "alice-the-editor");
      Cli.ok(b, "send", "alice-the-editor", secret);
      Cli.ok(b, "send", "alice-the-editor", secret.repeat(50));
    }
    List<byte[]> files = new ArrayList<>();
    try (var walk = Files.walk(serverData)) {
      for (Path f : walk.filter(Files::isRegularFile).toList()) {
        files.add(Files.readAllBytes(f));
      }
    }
    for (String needle : List.of(secret, "bob-the-source", "alice-the-editor", "the-meeting")) {
      assertFalse(anyContains(files, needle.getBytes(UTF_8)), "found '" + needle + "' in the server's data");
    }
    // The scan must be able to see what the server wrote, or it proves nothing: the store's
    // column family names are on disk in the clear.
    assertTrue(anyContains(files, "mailboxes".getBytes(UTF_8)), "the scan should see the store's own names");
  }

  private static boolean anyContains(List<byte[]> files, byte[] needle) {
    for (byte[] f : files) {
      outer:
      for (int i = 0; i + needle.length <= f.length; i++) {
        for (int j = 0; j < needle.length; j++) {
          if (f[i + j] != needle[j]) {
            continue outer;
          }
        }
        return true;
      }
    }
    return false;
  }
}
