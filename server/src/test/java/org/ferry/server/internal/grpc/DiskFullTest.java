package org.ferry.server.internal.grpc;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.ferry.proto.ErrorReasons;
import org.ferry.proto.v1.Delivery;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issue 19 point 5: a full disk refuses sends and new mailboxes with RESOURCE_EXHAUSTED
 * (SERVER_FULL), lets owners drain and acknowledge, and works again without a restart once there
 * is room. The disk is a small tmpfs (root mounts it; CI runs as root).
 */
class DiskFullTest {
  @TempDir Path dir;
  Path mount;

  @BeforeEach
  void mountSmallDisk() throws Exception {
    boolean root = "root".equals(System.getProperty("user.name"));
    if (!root && System.getenv("FERRY_REQUIRE_TOOLS") == null) {
      Assumptions.abort("needs root to mount a small tmpfs");
    }
    mount = dir.resolve("disk");
    Files.createDirectories(mount);
    run("mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", mount.toString());
  }

  @AfterEach
  void unmount() throws Exception {
    if (mount != null) {
      run("umount", "-l", mount.toString());
    }
  }

  private static void run(String... command) throws IOException, InterruptedException {
    Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes());
    if (p.waitFor() != 0) {
      throw new IOException(String.join(" ", command) + " failed: " + out);
    }
  }

  /** Fills the disk with a file of someone else's until it is full. */
  private static Path fill(Path disk) throws IOException {
    Path filler = disk.resolve("filler");
    byte[] chunk = new byte[1 << 20];
    try (OutputStream out = Files.newOutputStream(filler)) {
      while (true) {
        out.write(chunk);
      }
    } catch (IOException full) {
      if (!String.valueOf(full.getMessage()).contains("No space left")) {
        throw full;
      }
    }
    return filler;
  }

  private static void assertServerFull(StatusRuntimeException e) {
    assertEquals(Status.Code.RESOURCE_EXHAUSTED, e.getStatus().getCode(), e.toString());
    assertEquals(ErrorReasons.SERVER_FULL, ErrorReasons.of(e).orElse(null), e.toString());
  }

  @Test
  void aFullDiskRefusesSendsAsServerFullWhileOwnersDrainAndAllWorksAgainOnceThereIsRoom() throws Exception {
    try (TestServer server = TestServer.withDiskReserve(mount.resolve("store"), 8 << 20, 4 << 20)) {
      TestServer.Box box = server.createMailbox();
      List<byte[]> sent = new ArrayList<>();
      for (int i = 0; i < 20; i++) {
        byte[] id = TestServer.bytes(16);
        server.mailboxes().send(TestServer.sendTo(box, id, 65536).build());
        sent.add(id);
      }
      Path filler = fill(mount);

      // Sends: SERVER_FULL, not INTERNAL (one may still fit in space RocksDB set aside for its log).
      StatusRuntimeException refused = null;
      for (int i = 0; i < 100 && refused == null; i++) {
        byte[] id = TestServer.bytes(16);
        try {
          server.mailboxes().send(TestServer.sendTo(box, id, 1024).build());
          sent.add(id);
        } catch (StatusRuntimeException e) {
          refused = e;
        }
      }
      assertServerFull(refused);
      // New mailboxes too.
      assertServerFull(assertThrows(StatusRuntimeException.class, server::createMailbox));

      // The owner drains and acknowledges everything, and the server confirms that the acks
      // were written: the stream stays up.
      try (OwnerStream owner = new OwnerStream(server).subscribeConfirmingAcks(box)) {
        List<Delivery> got = owner.take(sent.size());
        got.forEach(owner::ack);
        assertEquals(sent.size(), owner.takeAcknowledged(sent.size()).size());
      }

      // Room again: sends and new mailboxes work without a restart.
      Files.delete(filler);
      await().atMost(Duration.ofSeconds(30)).ignoreExceptions().untilAsserted(() ->
          server.mailboxes().send(TestServer.sendTo(box, TestServer.bytes(16), 1024).build()));
      server.createMailbox();
      // And what was acknowledged while the disk was full is gone for good.
      try (OwnerStream owner = new OwnerStream(server).subscribe(box)) {
        assertEquals(1, owner.take(1).size());
        assertEquals(List.of(), owner.drain(Duration.ofMillis(500)));
      }
    }
  }

  @Test
  void sendsThatFillTheDiskAreRefusedAsServerFullAndTheOwnerCanStillDrain() throws Exception {
    try (TestServer server = TestServer.withDiskReserve(mount.resolve("store"), 8 << 20, 4 << 20)) {
      TestServer.Box box = server.createMailbox();
      int stored = 0;
      StatusRuntimeException refused = null;
      while (refused == null && stored < 10_000) {
        try {
          server.mailboxes().send(TestServer.sendTo(box, TestServer.bytes(16), 65536).build());
          stored++;
        } catch (StatusRuntimeException e) {
          refused = e;
        }
      }
      assertServerFull(refused);
      try (OwnerStream owner = new OwnerStream(server).subscribeConfirmingAcks(box)) {
        for (int i = 0; i < stored; i++) {
          owner.ack(owner.take(1).get(0));
        }
        assertEquals(stored, owner.takeAcknowledged(stored).size());
      }
      await().atMost(Duration.ofSeconds(30)).ignoreExceptions().untilAsserted(() ->
          server.mailboxes().send(TestServer.sendTo(box, TestServer.bytes(16), 65536).build()));
    }
  }
}
