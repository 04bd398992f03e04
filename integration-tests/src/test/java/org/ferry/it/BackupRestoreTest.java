package org.ferry.it;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.stream.Stream;
import org.ferry.datadir.DataDirectoryLock;
import org.ferry.sdk.FerryClient;
import org.ferry.server.testing.Ports;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code ferry server backup} and {@code ferry server restore}, with real server processes. */
class BackupRestoreTest {
  private static final Duration BOUND = Duration.ofSeconds(60);

  @TempDir Path dir;

  @Test
  void everyEnvelopeAcknowledgedBeforeAnOnlineBackupUnderLoadIsThereAfterRestoreUnderTheSameKey() throws Exception {
    Path data = dir.resolve("server");
    Path backup = dir.resolve("backups").resolve("monday");
    Path restored = dir.resolve("restored");
    ConcurrentLinkedQueue<String> acknowledged = new ConcurrentLinkedQueue<>();
    List<Throwable> failures = new CopyOnWriteArrayList<>();
    Set<String> beforeBackup;
    String fingerprint;
    int port;
    try (FerryClient alice = TestClients.open(dir, "alice");
        FerryClient bob = TestClients.open(dir, "bob")) {
      // The restored server must come back on the same ports (the clients pin host and port, and
      // the bridge line its port): ports below the kernel's ephemeral range, which no outgoing
      // connection can take meanwhile, as one picked by the kernel could be.
      int carrierPort = Ports.belowEphemeral("127.0.0.1");
      int listenPort = Ports.belowEphemeral("127.0.0.1");
      while (listenPort == carrierPort) {
        listenPort = Ports.belowEphemeral("127.0.0.1");
      }
      try (FerryProcess server = FerryProcess.server(dir.resolve("run1"), "--data", data.toString(),
          "--listen", "127.0.0.1:" + listenPort, "--carriers", "ws",
          "--carrier-listen", "127.0.0.1:" + carrierPort)) {
        port = server.address().port();
        fingerprint = server.address().fingerprintText();
        alice.initialize(server.address());
        bob.initialize(server.address());
        bob.acceptInvitation(alice.createInvitation("bob").uri(), "alice");

        AtomicBoolean stop = new AtomicBoolean();
        List<Thread> senders = new ArrayList<>();
        for (int t = 0; t < 3; t++) {
          int thread = t;
          senders.add(new Thread(() -> {
            try {
              for (int i = 0; !stop.get(); i++) {
                String text = "sender " + thread + " message " + i;
                bob.send("alice", text);
                acknowledged.add(text);
              }
            } catch (Throwable e) {
              failures.add(e);
            }
          }, "sender-" + t));
        }
        senders.forEach(Thread::start);
        await().atMost(BOUND).until(() -> acknowledged.size() >= 30 || !failures.isEmpty());
        // Every send that has returned by now was acknowledged before the backup began.
        beforeBackup = new HashSet<>(acknowledged);
        FerryProcess.Exited b = FerryProcess.runServer(dir.resolve("backup-run"),
            "backup", backup.toString(), "--data", data.toString());
        int duringBackup = acknowledged.size() - beforeBackup.size();
        // The load goes on after the backup, and nothing failed.
        int after = acknowledged.size();
        await().atMost(BOUND).until(() -> acknowledged.size() >= after + 10 || !failures.isEmpty());
        stop.set(true);
        for (Thread t : senders) {
          t.join(BOUND.toMillis());
        }
        assertEquals(List.of(), failures);
        assertEquals(0, b.exit(), b.err());
        assertTrue(b.out().contains("backup from the running server (fingerprint " + fingerprint + ")"), b.out());
        System.out.println("acknowledged before the backup: " + beforeBackup.size() + ", during it: " + duringBackup
            + ", in all: " + acknowledged.size());
      }
      assertOwnerOnly(backup);

      FerryProcess.Exited r = FerryProcess.runServer(dir.resolve("restore-run"),
          "restore", backup.toString(), "--data", restored.toString());
      assertEquals(0, r.exit(), r.err());
      assertTrue(r.out().contains(fingerprint), r.out());
      assertOwnerOnly(restored);

      try (FerryProcess again = FerryProcess.server(dir.resolve("run2"), "--data", restored.toString(),
          "--listen", "127.0.0.1:" + port, "--carriers", "ws", "--carrier-listen", "127.0.0.1:" + carrierPort)) {
        assertEquals(fingerprint, again.address().fingerprintText(), "same key, so clients' pins hold");
        Set<String> received = new HashSet<>();
        await().atMost(BOUND).until(() -> {
          alice.receive(Duration.ofMillis(500), m -> received.add(m.text()));
          return received.containsAll(beforeBackup);
        });
        // Bridge lines are kept too (secret path, pin): the carriers' secrets came back with the key.
        assertEquals(lines(dir.resolve("run1")), lines(dir.resolve("run2")));
        assertEquals(1, lines(dir.resolve("run2")).size());
      }
    }
  }

  @Test
  void aStoppedServerIsBackedUpDirectlyAndRestoresWithItsKey() throws Exception {
    Path data = dir.resolve("server");
    String fingerprint;
    try (FerryProcess server = FerryProcess.server(dir.resolve("run1"), "--data", data.toString(),
        "--listen", "127.0.0.1:0")) {
      fingerprint = server.address().fingerprintText();
    }
    FerryProcess.Exited b = FerryProcess.runServer(dir.resolve("b"), "backup", dir.resolve("bk").toString(),
        "--data", data.toString());
    assertEquals(0, b.exit(), b.err());
    assertTrue(b.out().contains("backup of the stopped server (fingerprint " + fingerprint + ")"), b.out());
    assertFalse(Files.exists(data.resolve("backup-staging")), "nothing left staged, not even the directory");
    FerryProcess.Exited r = FerryProcess.runServer(dir.resolve("r"), "restore", dir.resolve("bk").toString(),
        "--data", dir.resolve("new").toString());
    assertEquals(0, r.exit(), r.err());
    try (FerryProcess again = FerryProcess.server(dir.resolve("run2"), "--data", dir.resolve("new").toString(),
        "--listen", "127.0.0.1:0")) {
      assertEquals(fingerprint, again.address().fingerprintText());
    }
  }

  @Test
  void backupAndRestoreRefuseToWriteOverAnythingAndCheckTheBackup() throws Exception {
    Path data = dir.resolve("server");
    try (FerryProcess server = FerryProcess.server(dir.resolve("run"), "--data", data.toString(),
        "--listen", "127.0.0.1:0")) {
      Path full = Files.createDirectories(dir.resolve("full"));
      Files.writeString(full.resolve("keep.txt"), "mine");
      FerryProcess.Exited b = FerryProcess.runServer(dir.resolve("b1"), "backup", full.toString(),
          "--data", data.toString());
      assertEquals(1, b.exit());
      assertEquals(List.of("ferry server backup: " + full + " is not empty; a backup never goes over another:"
          + " give a new or empty directory"), b.errLines());
      assertEquals(List.of(full.resolve("keep.txt")), list(full));

      Path good = dir.resolve("good");
      assertEquals(0, FerryProcess.runServer(dir.resolve("b2"), "backup", good.toString(),
          "--data", data.toString()).exit());
      assertEquals(List.of(), list(data.resolve("backup-staging")), "nothing left staged");

      // Into a directory with something in it, or one a server runs on.
      FerryProcess.Exited r = FerryProcess.runServer(dir.resolve("r1"), "restore", good.toString(),
          "--data", full.toString());
      assertEquals(1, r.exit());
      assertEquals(List.of("ferry server restore: " + full + " is not empty; restore only into a new or empty"
          + " data directory"), r.errLines());
      r = FerryProcess.runServer(dir.resolve("r2"), "restore", good.toString(), "--data", data.toString());
      assertEquals(1, r.exit());
      assertTrue(r.err().contains("data directory " + data + " is in use by another Ferry process"), r.err());
      Path locked = dir.resolve("locked");
      try (DataDirectoryLock held = DataDirectoryLock.acquire(locked)) {
        r = FerryProcess.runServer(dir.resolve("r3"), "restore", good.toString(), "--data", locked.toString());
        assertEquals(1, r.exit());
        assertTrue(r.err().contains("is in use by another Ferry process"), r.err());
      }

      // An incomplete backup (no manifest), and a damaged one.
      Path incomplete = Files.createDirectories(dir.resolve("incomplete"));
      r = FerryProcess.runServer(dir.resolve("r4"), "restore", incomplete.toString(),
          "--data", dir.resolve("n1").toString());
      assertEquals(1, r.exit());
      assertTrue(r.err().contains("is not a complete Ferry server backup"), r.err());
      Path key = good.resolve("identity").resolve("server-key.pem");
      byte[] bytes = Files.readAllBytes(key);
      bytes[40] ^= 1;
      Files.write(key, bytes);
      Path n2 = dir.resolve("n2");
      r = FerryProcess.runServer(dir.resolve("r5"), "restore", good.toString(), "--data", n2.toString());
      assertEquals(1, r.exit());
      assertEquals(List.of("ferry server restore: the backup is damaged: identity/server-key.pem does not match"
          + " its checksum"), r.errLines());
      assertEquals(List.of(n2.resolve(DataDirectoryLock.FILE_NAME)), list(n2), "nothing half restored");
    }
  }

  private static void assertOwnerOnly(Path root) throws Exception {
    try (Stream<Path> all = Files.walk(root)) {
      for (Path p : (Iterable<Path>) all::iterator) {
        String mode = PosixFilePermissions.toString(Files.getPosixFilePermissions(p, LinkOption.NOFOLLOW_LINKS));
        assertEquals(Files.isDirectory(p) ? "rwx------" : "rw-------", mode, p.toString());
      }
    }
    assertTrue(Files.exists(root.resolve("identity").resolve("server-key.pem")), "the key is in it");
  }

  @Test
  void aBackupHoldsOnlyTheServersOwnFilesGoesOutsideTheDataDirectoryAndAStoreWithoutItsKeyNeverStarts()
      throws Exception {
    Path data = dir.resolve("server");
    String fingerprint;
    try (FerryProcess server = FerryProcess.server(dir.resolve("run1"), "--data", data.toString(),
        "--listen", "127.0.0.1:0")) {
      fingerprint = server.address().fingerprintText();
    }
    // What an operator left in the data directory is not the server's, and not backed up.
    Files.writeString(data.resolve("notes.txt"), "the operator's own");
    Files.createDirectories(data.resolve("old-backup"));
    Files.writeString(data.resolve("old-backup").resolve("copy.pem"), "another copy of a key");

    FerryProcess.Exited inside = FerryProcess.runServer(dir.resolve("b0"), "backup",
        data.resolve("backups").resolve("monday").toString(), "--data", data.toString());
    assertEquals(1, inside.exit(), inside.err());
    assertTrue(inside.err().contains("is inside the data directory"), inside.err());
    assertFalse(Files.exists(data.resolve("backups")), "nothing made for the refused backup");

    Path bk = dir.resolve("bk");
    FerryProcess.Exited b = FerryProcess.runServer(dir.resolve("b"), "backup", bk.toString(), "--data", data.toString());
    assertEquals(0, b.exit(), b.err());
    String manifest = Files.readString(bk.resolve("ferry-backup"));
    assertFalse(manifest.contains("notes.txt") || manifest.contains("old-backup"), manifest);
    assertTrue(manifest.contains("identity/"), manifest);

    // Half a restore: the store without its key. The server refuses rather than make a new key.
    Path half = dir.resolve("half");
    Files.createDirectories(half);
    Files.setPosixFilePermissions(half, java.nio.file.attribute.PosixFilePermissions.fromString("rwx------"));
    try (Stream<Path> files = Files.walk(bk.resolve("store"))) {
      for (Path f : (Iterable<Path>) files::iterator) {
        Path to = half.resolve(bk.relativize(f).toString());
        if (Files.isDirectory(f)) {
          Files.createDirectories(to);
        } else {
          Files.copy(f, to);
        }
      }
    }
    FerryProcess.Exited refused = FerryProcess.runServer(dir.resolve("s"), "--data", half.toString(),
        "--listen", "127.0.0.1:0");
    assertTrue(refused.exit() != 0, refused.out());
    assertTrue(refused.err().contains("holds a store but not its key"), refused.err());
    assertFalse(Files.exists(half.resolve("identity")), "no new key was made");
    assertTrue(fingerprint.length() > 0);
  }

  private static List<Path> list(Path dir) throws Exception {
    if (!Files.exists(dir)) {
      return List.of();
    }
    try (Stream<Path> s = Files.list(dir)) {
      return s.sorted().toList();
    }
  }

  /** The bridge lines a server process printed. */
  private static List<String> lines(Path run) throws Exception {
    List<String> out = new ArrayList<>();
    try (Stream<Path> files = Files.list(run)) {
      for (Path f : (Iterable<Path>) files::iterator) {
        if (f.getFileName().toString().startsWith("stdout")) {
          Files.readAllLines(f).stream().filter(l -> l.startsWith("bridge: "))
              .map(l -> l.replaceFirst(":[0-9]+/", ":PORT/")).forEach(out::add);
        }
      }
    }
    return out;
  }
}
