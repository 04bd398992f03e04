package org.ferry.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.ferry.sdk.FerryClient;
import org.ferry.sdk.FerryException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class MessageSizeTest {
  @TempDir Path dir;

  @Test
  void tooLargeSaysHowManyCharactersOfTheTextFitAndTheLongestTextThatFitsGoesThrough() throws Exception {
    try (RunningServer server = new RunningServer(dir.resolve("server"));
        FerryClient alice = TestClients.open(dir, "alice");
        FerryClient bob = TestClients.open(dir, "bob")) {
      alice.initialize(server.address());
      bob.initialize(server.address());
      bob.acceptInvitation(alice.createInvitation("bob").uri(), "alice");

      String latin = "a".repeat(70_000);
      FerryException tooLong = assertThrows(FerryException.class, () -> bob.send("alice", latin));
      assertEquals(FerryException.Reason.TOO_LARGE, tooLong.reason());
      String fits = tooLong.getMessage().replaceAll(".*at most ([0-9]+) .*", "$1");
      assertTrue(tooLong.getMessage().contains("70000 characters") && tooLong.getMessage().contains("characters"),
          tooLong.getMessage());

      String greek = "α".repeat(40_000); // 2 bytes each in UTF-8
      FerryException greekTooLong = assertThrows(FerryException.class, () -> bob.send("alice", greek));
      String greekFits = greekTooLong.getMessage().replaceAll(".*at most ([0-9]+) .*", "$1");
      assertEquals(Integer.parseInt(fits) / 2, Integer.parseInt(greekFits), greekTooLong.getMessage());

      // The first messages of a session carry the PQXDH prekey message: the biggest case.
      bob.send("alice", "a".repeat(Integer.parseInt(fits)));
      bob.send("alice", "α".repeat(Integer.parseInt(greekFits)));
      List<Integer> got = new ArrayList<>();
      alice.receive(Duration.ofMillis(500), m -> got.add(m.text().length()));
      assertEquals(List.of(Integer.parseInt(fits), Integer.parseInt(greekFits)), got);
    }
  }
}
