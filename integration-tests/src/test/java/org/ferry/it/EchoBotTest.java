package org.ferry.it;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.ferry.examples.EchoBot;
import org.ferry.sdk.FerryClient;
import org.ferry.sdk.ReceivedMessage;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The examples' echo bot as its own process (a JVM from this test's class path) against a real
 * server, with a user who accepts its invitation and writes to it.
 */
class EchoBotTest {
  private static final Duration BOUND = Duration.ofSeconds(90);

  @TempDir Path dir;
  private final Closer closer = new Closer();
  private RunningServer server;
  private Path log;
  private Path invite;

  @AfterEach
  void closeAll() {
    closer.close();
  }

  /** Starts the bot with {@code extra} arguments after --data, --server and --invite-file. */
  private Process startBot(String... extra) throws IOException {
    server = closer.add(new RunningServer(dir.resolve("server")));
    log = dir.resolve("bot.log");
    invite = dir.resolve("invite.txt");
    List<String> command = new ArrayList<>(List.of(
        Path.of(System.getProperty("java.home"), "bin", "java").toString(),
        "-cp", System.getProperty("java.class.path"),
        EchoBot.class.getName(),
        "--data", dir.resolve("bot").toString(),
        "--server", server.address().toString(),
        "--invite-file", invite.toString()));
    command.addAll(List.of(extra));
    Process bot = new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(log.toFile()).start();
    closer.add(() -> {
      bot.destroyForcibly();
      bot.waitFor(10, TimeUnit.SECONDS);
    });
    return bot;
  }

  /** Waits for the bot to write its invitation (failing at once if it exits instead). */
  private String awaitInvitation(Process bot) throws IOException {
    await().atMost(BOUND).until(() -> {
      if (!bot.isAlive()) {
        throw new AssertionError("the bot exited " + bot.exitValue() + ": " + output());
      }
      return Files.exists(invite);
    });
    assertEquals(PosixFilePermissions.fromString("rw-------"), Files.getPosixFilePermissions(invite),
        "the invitation file is a secret");
    return Files.readString(invite, StandardCharsets.US_ASCII).strip();
  }

  private String output() throws IOException {
    return Files.readString(log, StandardCharsets.UTF_8);
  }

  @Test
  void botEchoesEachMessageOnceThenExitsZeroAndLogsNeitherTextNorInvitation() throws Exception {
    Process bot = startBot("--max-echoes", "3");
    String uri = awaitInvitation(bot);

    FerryClient user = closer.add(TestClients.open(dir, "user"));
    user.initialize(server.address());
    user.acceptInvitation(uri, "bot");
    List<ReceivedMessage> got = new CopyOnWriteArrayList<>();
    user.addListener(got::add);
    user.start();

    // Text that appears nowhere else, so that a log line holding it can be told.
    String marker = HexFormat.of().formatHex(new SecureRandom().generateSeed(12));
    List<String> sent = List.of("one " + marker, "two " + marker, "three " + marker);
    for (String text : sent) {
      user.sendAsync("bot", text).get(BOUND.toSeconds(), TimeUnit.SECONDS);
    }

    assertTrue(bot.waitFor(BOUND.toSeconds(), TimeUnit.SECONDS), "the bot did not exit: " + output());
    assertEquals(0, bot.exitValue(), output());
    await().atMost(BOUND).until(() -> got.size() >= sent.size());
    // Anything else still on the server arrives with one more receive (the bot has exited and
    // every send of its was held by the server before it did).
    user.stop();
    user.receive(Duration.ofSeconds(1), got::add);
    assertEquals(sent.stream().map(t -> EchoBot.ECHO_PREFIX + t).toList(),
        got.stream().map(ReceivedMessage::text).toList(), "echoes, once each, in order");
    assertTrue(got.stream().allMatch(m -> m.contactLabel().equals("bot")));

    String out = output();
    assertEquals(3, out.lines().filter(l -> l.matches("echo-bot: echo [0-9a-f]+ to guest-1 accepted .*")).count(),
        "one accepted echo per message in the bot's log:\n" + out);
    assertTrue(out.contains("echo-bot: contact established: guest-1"), out);
    assertTrue(out.contains("echo-bot: online via "), out);
    assertFalse(out.contains(marker), "the bot logged message text:\n" + out);
    assertFalse(out.contains(uri.substring("ferry:invite/".length())), "the bot logged its invitation:\n" + out);
  }

  @Test
  void sigtermStopsTheBotThroughItsShutdownHookAndItsDirectoryOpensAgain() throws Exception {
    Process bot = startBot();
    awaitInvitation(bot);
    await().atMost(BOUND).until(() -> output().contains("echo-bot: running"));

    bot.destroy(); // SIGTERM
    assertTrue(bot.waitFor(BOUND.toSeconds(), TimeUnit.SECONDS), "the bot did not stop: " + output());
    assertEquals(143, bot.exitValue(), "exit status after SIGTERM (128 + 15): " + output());
    assertTrue(output().contains("echo-bot: stopping"), output());

    // Closed cleanly: the store opens with the bot's key file and holds the invited contact.
    byte[] key = Files.readAllBytes(dir.resolve("bot").resolve("store.key"));
    try (FerryClient again = FerryClient.builder().dataDirectory(dir.resolve("bot")).storageKey(key).build()) {
      assertTrue(again.isInitialized());
      assertTrue(again.contact("guest-1").isPresent(), "the invited contact");
    }
  }
}
