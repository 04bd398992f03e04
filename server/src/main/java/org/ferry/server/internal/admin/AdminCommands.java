package org.ferry.server.internal.admin;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Iterator;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.Callable;
import org.ferry.datadir.DataDirectoryInUseException;
import org.ferry.datadir.DataDirectoryLock;
import org.ferry.server.internal.backup.ServerBackup;
import org.ferry.server.internal.store.DiskSpace;
import org.ferry.server.internal.store.MailboxStore;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** {@code ferry server backup | restore | status}: commands for the server's operator. */
public final class AdminCommands {
  /** Exit status when no server runs on the data directory (as LSB init scripts' {@code status}). */
  public static final int NOT_RUNNING = 3;
  private static final String DEFAULT_DATA = "./ferry-data/server";

  private AdminCommands() {}

  @Command(name = "backup", mixinStandardHelpOptions = true,
      description = "Takes a consistent backup of a server's data directory (store, key, carrier secrets) into "
          + "DIR, a new or empty directory made owner-only: from the running server over its admin channel, "
          + "or directly when no server runs.")
  public static final class Backup implements Callable<Integer> {
    @Parameters(paramLabel = "DIR", description = "Where the backup goes: a new or empty directory, any disk.")
    Path target;

    @Option(names = "--data", defaultValue = DEFAULT_DATA, description = "The server's data directory; default ${DEFAULT-VALUE}.")
    Path data;

    @Override
    public Integer call() {
      boolean existed = Files.exists(target);
      try {
        ServerBackup.prepareTarget(target, data);
      } catch (IOException e) {
        return fail(e.getMessage());
      }
      try {
        ServerBackup.Summary s;
        String how;
        try {
          JsonNode answer = AdminClient.call(data, "backup", Optional.empty());
          Path staged = Path.of(answer.get("staged").asText());
          try {
            s = ServerBackup.copyOut(staged, target);
          } finally {
            deleteStaged(staged);
          }
          how = "from the running server";
        } catch (AdminClient.NotRunningException e) {
          s = offline();
          how = "of the stopped server";
        }
        System.out.println("backup " + how + " (fingerprint " + s.fingerprint() + ") in " + target + ": "
            + s.files() + " files, " + size(s.bytes()));
        return 0;
      } catch (IOException | RuntimeException e) {
        undo(existed);
        return fail(e.getMessage());
      }
    }

    /** No server runs: take the lock ourselves and make the same checkpoint. */
    private ServerBackup.Summary offline() throws IOException {
      if (!Files.exists(ServerBackup.certificate(data))) {
        throw new IOException("no Ferry server data in " + data + " (no server key in it); check --data");
      }
      DataDirectoryLock lock;
      try {
        lock = DataDirectoryLock.acquire(data);
      } catch (DataDirectoryInUseException e) {
        throw new IOException("a Ferry process holds " + data + " but no server answers on its admin channel ("
            + AdminChannel.SOCKET_NAME + "); see that process's log", e);
      }
      try (lock) {
        Path staged;
        try (MailboxStore store = MailboxStore.open(data.resolve("store"), DiskSpace.DEFAULT_RESERVE_BYTES, 0)) {
          // The clock file is copied as it is: no server is running to have a later one.
          staged = ServerBackup.stage(data, store, file -> { });
        }
        try {
          return ServerBackup.copyOut(staged, target);
        } finally {
          deleteStaged(staged);
        }
      }
    }

    /** Leaves the target as it was: gone if made here, empty if it was. */
    private void undo(boolean existed) {
      try (var entries = Files.list(target)) {
        for (Path p : (Iterable<Path>) entries::iterator) {
          deleteQuietly(p);
        }
      } catch (IOException e) {
        return;
      }
      if (!existed) {
        deleteQuietly(target);
      }
    }

    private static int fail(String message) {
      System.err.println("ferry server backup: " + message);
      return 1;
    }
  }

  @Command(name = "restore", mixinStandardHelpOptions = true,
      description = "Restores a backup that 'ferry server backup' made into a new or empty data directory, "
          + "checking every file; then start a server on it.")
  public static final class Restore implements Callable<Integer> {
    @Parameters(paramLabel = "BACKUP", description = "The backup directory.")
    Path backup;

    @Option(names = "--data", required = true, description = "The data directory to restore into: new or empty.")
    Path data;

    @Override
    public Integer call() {
      try {
        ServerBackup.Summary s = ServerBackup.restore(backup, data);
        System.out.println("restored server (fingerprint " + s.fingerprint() + ") into " + data + ": "
            + s.files() + " files, " + size(s.bytes()) + "; start it with: ferry server --data " + data);
        return 0;
      } catch (IOException | RuntimeException e) {
        System.err.println("ferry server restore: " + e.getMessage());
        return 1;
      }
    }
  }

  @Command(name = "status", mixinStandardHelpOptions = true,
      description = "Shows how the server running on a data directory is doing (over its local admin channel, "
          + "which only the server's user can use). Exit status 3 when no server runs there.")
  public static final class Status implements Callable<Integer> {
    private static final ObjectMapper JSON = new ObjectMapper();

    @Option(names = "--data", defaultValue = DEFAULT_DATA, description = "The server's data directory; default ${DEFAULT-VALUE}.")
    Path data;

    @Option(names = "--json", description = "Print the status as one JSON object.")
    boolean json;

    @Override
    public Integer call() {
      JsonNode s;
      try {
        s = AdminClient.call(data, "status", Optional.of(Duration.ofSeconds(30)));
      } catch (AdminClient.NotRunningException e) {
        System.err.println("ferry server status: " + e.getMessage());
        return NOT_RUNNING;
      } catch (IOException e) {
        System.err.println("ferry server status: " + e.getMessage());
        return 1;
      }
      if (json) {
        try {
          System.out.println(JSON.writeValueAsString(s));
        } catch (IOException e) {
          throw new IllegalStateException(e);
        }
      } else {
        System.out.print(text(s));
      }
      return 0;
    }

    static String text(JsonNode s) {
      StringBuilder b = new StringBuilder();
      b.append("server: ").append(s.path("address").asText()).append(", up ")
          .append(duration(s.path("uptime_seconds").asLong())).append('\n');
      JsonNode c = s.path("connections");
      long total = 0;
      StringBuilder parts = new StringBuilder();
      for (Iterator<Map.Entry<String, JsonNode>> it = c.fields(); it.hasNext(); ) {
        Map.Entry<String, JsonNode> e = it.next();
        total += e.getValue().asLong();
        parts.append(parts.length() == 0 ? "" : ", ").append(e.getKey()).append(' ').append(e.getValue().asLong());
      }
      b.append("connections: ").append(total).append(" (").append(parts).append(")\n");
      b.append("receive streams: ").append(s.path("receive_streams").asLong()).append('\n');
      JsonNode q = s.path("queue");
      b.append("queue: ").append(q.path("envelopes").asLong()).append(" envelopes, ")
          .append(size(q.path("bytes").asLong())).append('\n');
      JsonNode d = s.path("disk");
      long budget = d.path("storage_budget_bytes").asLong();
      long used = d.path("storage_budget_used_bytes").asLong();
      b.append("storage budget: ").append(size(used)).append(" of ").append(size(budget)).append(" used (")
          .append(String.format(Locale.ROOT, "%.1f%%", budget == 0 ? 0.0 : 100.0 * used / budget)).append(")\n");
      long usable = d.path("usable_bytes").asLong();
      b.append("disk: ").append(usable < 0 ? "free space unknown" : size(usable) + " usable").append(", ")
          .append(size(d.path("reserve_bytes").asLong())).append(" kept free; ")
          .append(d.path("accepting").asBoolean() ? "accepting new envelopes" : "REFUSING new envelopes (full)")
          .append('\n');
      JsonNode f = s.path("federation");
      long outbound = f.path("outbound_items").asLong();
      b.append("federation: ").append(f.path("mode").asText()).append("; ")
          .append(outbound == 0 ? "nothing waiting for other servers"
              : outbound + " items waiting for other servers").append('\n');
      for (JsonNode peer : f.path("peers")) {
        b.append("peer ").append(peer.path("peer").asText()).append(" (").append(peer.path("address").asText())
            .append("): ").append(peer.path("waiting").asLong()).append(" waiting, ")
            .append(peer.path("state").asText());
        if (peer.path("failed_calls").asLong() > 0) {
          b.append(" after ").append(peer.path("failed_calls").asLong()).append(" failed calls (last: ")
              .append(peer.path("last_error").asText()).append(')');
        }
        if (peer.has("next_try_seconds")) {
          b.append(", next try in ").append(peer.path("next_try_seconds").asLong()).append(" s");
        }
        b.append('\n');
      }
      JsonNode bridges = s.path("bridges");
      if (bridges.isEmpty()) {
        b.append("bridges: none (no --carriers)\n");
      }
      for (JsonNode br : bridges) {
        b.append("bridge ").append(br.path("line").asText()).append(": ")
            .append(br.path("answers").asBoolean() ? "answers" : "DOES NOT ANSWER")
            .append(" (").append(br.path("detail").asText()).append(", ")
            .append(br.path("millis").asLong()).append(" ms)\n");
      }
      return b.toString();
    }

    private static String duration(long seconds) {
      long d = seconds / 86400;
      long h = seconds % 86400 / 3600;
      long m = seconds % 3600 / 60;
      long sec = seconds % 60;
      return (d > 0 ? d + "d " : "") + (d > 0 || h > 0 ? h + "h " : "") + (d > 0 || h > 0 || m > 0 ? m + "m " : "")
          + sec + "s";
    }
  }

  /** Bytes in binary units, one decimal: 48.0 KiB. */
  static String size(long bytes) {
    if (bytes < 1024) {
      return bytes + " B";
    }
    String[] units = {"KiB", "MiB", "GiB", "TiB"};
    double v = bytes;
    int u = -1;
    while (v >= 1024 && u < units.length - 1) {
      v /= 1024;
      u++;
    }
    return String.format(Locale.ROOT, "%.1f %s", v, units[u]);
  }

  /** Removes a staged backup, and the staging directory too once nothing else is staged there. */
  private static void deleteStaged(Path staged) {
    deleteQuietly(staged);
    try {
      Files.deleteIfExists(staged.getParent());
    } catch (IOException e) {
      // Another backup is staged there (or it is gone): left for it, or for the next start.
    }
  }

  private static void deleteQuietly(Path p) {
    try {
      ServerBackup.deleteTree(p);
    } catch (IOException e) {
      // Best effort.
    }
  }
}
