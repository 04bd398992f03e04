package org.ferry.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.ferry.sdk.FerryClient;
import org.ferry.sdk.FerryException;
import org.ferry.sdk.ReceivedMessage;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** What users see of a server's limits: reasons they can act on, and nothing lost. */
class ServerLimitsEndToEndTest {
  @TempDir Path dir;

  private FerryClient client(String name) {
    return TestClients.open(dir, name);
  }

  @Test
  void aFullMailboxRefusesTheSenderWithRecipientFullAndAcceptsAgainOnceDrained() throws Exception {
    // Two envelopes fit: the invitation's handshake reply, then one message.
    try (RunningServer server = RunningServer.configured(dir.resolve("server"), b -> b.mailboxQuota(2, 1 << 20));
        FerryClient alice = client("alice");
        FerryClient bob = client("bob")) {
      alice.initialize(server.address());
      bob.initialize(server.address());
      bob.acceptInvitation(alice.createInvitation("bob").uri(), "alice");
      bob.send("alice", "one");
      FerryException full = assertThrows(FerryException.class, () -> bob.send("alice", "two"));
      assertEquals(FerryException.Reason.RECIPIENT_FULL, full.reason());

      List<ReceivedMessage> got = new ArrayList<>();
      alice.receive(Duration.ofMillis(500), got::add);
      assertEquals(List.of("one"), got.stream().map(ReceivedMessage::text).toList());
      bob.send("alice", "two");
      got.clear();
      alice.receive(Duration.ofMillis(500), got::add);
      assertEquals(List.of("two"), got.stream().map(ReceivedMessage::text).toList());
    }
  }

  @Test
  void aServerWithACreationTokenServesOnlyClientsInitialisedWithIt() throws Exception {
    try (RunningServer server = RunningServer.configured(dir.resolve("server"), b -> b.creationToken("s3cret"));
        FerryClient stranger = client("stranger");
        FerryClient member = client("member")) {
      stranger.initialize(server.address());
      FerryException refused = assertThrows(FerryException.class, () -> stranger.createInvitation("x"));
      assertEquals(FerryException.Reason.CREATION_TOKEN_REQUIRED, refused.reason());
      assertTrue(stranger.contacts().isEmpty(), "nothing half-made is left behind");

      member.initialize(server.address(), "s3cret");
      assertTrue(member.createInvitation("x").uri().startsWith("ferry:invite/"));
    }
  }

  @Test
  void theCliReadsTheCreationTokenFromAFile() throws Exception {
    try (RunningServer server = RunningServer.configured(dir.resolve("server"), b -> b.creationToken("s3cret"))) {
      String address = server.address().toString();
      Path tokenFile = Files.writeString(dir.resolve("token"), "s3cret\n");
      Path member = dir.resolve("member");
      Cli.ok(member, "init", "--server", address, "--creation-token-file", tokenFile.toString());
      assertTrue(Cli.ok(member, "invite", "--name", "friend").startsWith("ferry:invite/"));

      Path wrong = Files.writeString(dir.resolve("wrong"), "guess\n");
      Path stranger = dir.resolve("stranger");
      Cli.ok(stranger, "init", "--server", address, "--creation-token-file", wrong.toString());
      Cli.Result refused = Cli.client(stranger, "invite", "--name", "friend");
      assertEquals(1, refused.exit());
      assertEquals(1, refused.errLines().size(), refused.err());
      assertTrue(refused.err().contains("creation token"), refused.err());

      Cli.Result missing = Cli.client(dir.resolve("third"), "init", "--server", address,
          "--creation-token-file", dir.resolve("absent").toString());
      assertEquals(2, missing.exit());
      assertTrue(missing.err().contains("cannot read creation token file"), missing.err());
    }
  }
}
