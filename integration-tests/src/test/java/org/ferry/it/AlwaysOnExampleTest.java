package org.ferry.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.security.SecureRandom;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import org.ferry.examples.AlwaysOnExample;
import org.ferry.sdk.Contact;
import org.ferry.sdk.FerryClient;
import org.ferry.sdk.Invitation;
import org.ferry.sdk.ReceivedMessage;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The always-on example that docs/sdk.md opens with ({@link AlwaysOnExample#chat}) against a
 * real server, with Alice as a test user who answers: it does what the document says.
 */
class AlwaysOnExampleTest {
  @TempDir Path dir;
  private final Closer closer = new Closer();

  @AfterEach
  void closeAll() {
    closer.close();
  }

  /** A screen that records what it shows and what it asked, and whose user always confirms. */
  private static final class RecordingScreen implements AlwaysOnExample.Screen {
    final List<String> shown = new CopyOnWriteArrayList<>();
    final List<String> confirmed = new CopyOnWriteArrayList<>();

    @Override
    public void show(String line) {
      shown.add(line);
    }

    @Override
    public boolean userConfirms(String contactLabel, String safetyNumber) {
      confirmed.add(contactLabel + " " + safetyNumber);
      return true;
    }
  }

  @Test
  void docsExampleJoinsAliceSaysHelloShowsHerAnswerAndMarksHerVerified() throws Exception {
    RunningServer server = closer.add(new RunningServer(dir.resolve("server")));
    FerryClient alice = closer.add(TestClients.open(dir, "alice"));
    alice.initialize(server.address());
    Invitation invitation = alice.createInvitation("app");
    // Alice answers every message she gets.
    List<ReceivedMessage> atAlice = new CopyOnWriteArrayList<>();
    alice.addListener(m -> {
      atAlice.add(m);
      alice.sendAsync(m.contactLabel(), "hi, " + m.contactLabel());
    });
    alice.start();

    RecordingScreen screen = new RecordingScreen();
    byte[] storageKey = new byte[32];
    new SecureRandom().nextBytes(storageKey);
    boolean answered = AlwaysOnExample.chat(
        dir.resolve("app"), storageKey, server.address().toString(), invitation.uri(), screen);

    assertTrue(answered, "Alice's answer arrived within the example's 60 s: " + screen.shown);
    assertEquals(List.of("hello"), atAlice.stream().map(ReceivedMessage::text).toList(), "what Alice got");
    assertTrue(screen.shown.contains("alice: hi, app"), "the answer was shown: " + screen.shown);
    assertTrue(screen.shown.contains("online"), "connectivity was shown: " + screen.shown);
    assertTrue(screen.shown.stream().noneMatch(l -> l.startsWith("not delivered")), screen.shown.toString());

    // The example closed its client; its store says Alice is verified, with the number both
    // sides see, which is the one the user was asked about.
    String numberAtAlice = alice.contact("app").orElseThrow().safetyNumber().orElseThrow();
    try (FerryClient app = FerryClient.builder()
        .dataDirectory(dir.resolve("app").resolve("ferry")).storageKey(storageKey).build()) {
      Contact aliceAtApp = app.contact("alice").orElseThrow();
      assertTrue(aliceAtApp.verified(), "verify() marked Alice verified");
      assertEquals(numberAtAlice, aliceAtApp.safetyNumber().orElseThrow());
    }
    assertEquals(List.of("alice " + numberAtAlice), screen.confirmed);
  }
}
