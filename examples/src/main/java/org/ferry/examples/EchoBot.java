package org.ferry.examples;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.SeekableByteChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.FileAttribute;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.SecureRandom;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicInteger;
import org.ferry.proto.ServerAddress;
import org.ferry.sdk.Connectivity;
import org.ferry.sdk.FerryClient;
import org.ferry.sdk.FerryException;
import org.ferry.sdk.FerryListener;
import org.ferry.sdk.Invitation;
import org.ferry.sdk.ReceivedMessage;

/**
 * A small always-on Ferry program: it answers every message with {@code "echo: "} and the text.
 * Read it as documentation of the SDK's always-on API (see docs/sdk.md); CI runs it against a
 * real server ({@code EchoBotTest} in integration-tests).
 *
 * <pre>
 * EchoBot --data DIR [--server ADDRESS] [--invite-file FILE] [--max-echoes N]
 *
 *   --data DIR          the bot's data directory (made owner-only); created on the first run
 *   --server ADDRESS    the home server, HOST:PORT#FINGERPRINT as `ferry server` prints it;
 *                       needed on the first run only
 *   --invite-file FILE  write a fresh one-time invitation to FILE (owner-only: it is a secret)
 *   --max-echoes N      exit (0) once N echoes are held by the contacts' servers;
 *                       otherwise run until SIGTERM or Ctrl-C
 * </pre>
 *
 * <p>Run it from a build ({@code ./mvnw -q -B -DskipTests package}); the SDK's jar finds its
 * dependencies in {@code client-sdk/target/lib}:
 *
 * <pre>
 * java -cp examples/target/ferry-examples-0.1.0-SNAPSHOT.jar:client-sdk/target/ferry-client-sdk-0.1.0-SNAPSHOT.jar \
 *     org.ferry.examples.EchoBot --data ./bot --server "$SERVER" --invite-file ./bot-invite.txt
 * ferry client --data ./alice accept - --name bot &lt; ./bot-invite.txt
 * </pre>
 *
 * <p>The storage key: an app keeps it in the platform's keystore or derives it from a passphrase
 * the user types. A bot has no user at the keyboard, so this one keeps a random key in
 * {@code DIR/store.key}, owner-only, as {@code ferry client} does without a passphrase (so
 * {@code ferry client --data DIR contacts} works on the bot's directory while the bot is
 * stopped). That protects the store from other users of the machine, not from someone who
 * takes the disk.
 *
 * <p>What it prints: events with contact labels and message ids, never message text and never
 * the invitation (whoever reads a log could otherwise take the invitation first).
 */
public final class EchoBot {
  /** What an echo starts with. */
  public static final String ECHO_PREFIX = "echo: ";

  private static final Set<PosixFilePermission> OWNER_ONLY = PosixFilePermissions.fromString("rw-------");
  private static final FileAttribute<Set<PosixFilePermission>> OWNER_ONLY_FILE =
      PosixFilePermissions.asFileAttribute(OWNER_ONLY);
  private static final FileAttribute<Set<PosixFilePermission>> OWNER_ONLY_DIR =
      PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------"));

  private EchoBot() {}

  /** The command line, read. */
  private record Options(Path data, Optional<String> server, Optional<Path> inviteFile, int maxEchoes) {}

  public static void main(String[] args) {
    Options options;
    try {
      options = parse(args);
    } catch (IllegalArgumentException e) {
      System.err.println("echo-bot: " + e.getMessage());
      System.err.println("usage: EchoBot --data DIR [--server ADDRESS] [--invite-file FILE] [--max-echoes N]");
      System.exit(2);
      return;
    }
    try {
      System.exit(run(options));
    } catch (FerryException e) {
      // The SDK's messages say what to do and hold no secrets or message text.
      System.err.println("echo-bot: " + e.reason() + ": " + e.getMessage());
      System.exit(1);
    } catch (IOException | IllegalArgumentException e) {
      System.err.println("echo-bot: " + e.getMessage());
      System.exit(1);
    }
  }

  private static int run(Options options) throws IOException {
    byte[] storageKey = storageKey(options.data());
    // build() takes the data directory's lock: a second bot on the same directory fails here.
    FerryClient client = FerryClient.builder().dataDirectory(options.data()).storageKey(storageKey).build();
    // SIGTERM and Ctrl-C run shutdown hooks: close() stops the background loop, keeps what is
    // queued in the outbox for the next run, and closes the store cleanly.
    Thread closer = new Thread(() -> {
      log("stopping");
      client.close();
    }, "echo-bot-shutdown");
    Runtime.getRuntime().addShutdownHook(closer);

    if (!client.isInitialized()) {
      // First run: make our identity and check that the server answers with its pinned key.
      String server = options.server().orElseThrow(
          () -> new IllegalArgumentException("--server is needed on the first run"));
      client.initialize(ServerAddress.parse(server));
      log("initialised");
    }
    if (options.inviteFile().isPresent()) {
      writeInvitation(client, options.inviteFile().get());
    }

    // Counts the echoes the contacts' servers hold; main waits for it below. Without
    // --max-echoes the count is never reached: the bot runs until SIGTERM or Ctrl-C.
    CountDownLatch echoed = new CountDownLatch(options.maxEchoes() > 0 ? options.maxEchoes() : Integer.MAX_VALUE);
    client.addListener(new Echoer(client, echoed));
    // The background loop: it receives as things arrive, reconnects by itself (with back-off)
    // and sends what waits in the outbox. Listener calls come on the client's event thread.
    client.start();
    log("running");

    try {
      echoed.await();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    // Reached --max-echoes: close now (the hook would too, but main should say when it is done).
    client.close();
    log("done: " + options.maxEchoes() + " echo(es) delivered");
    return 0;
  }

  /** Answers messages and logs events. Everything here runs on the client's event thread. */
  private static final class Echoer implements FerryListener {
    private final FerryClient client;
    private final CountDownLatch echoed;
    private final AtomicInteger accepted = new AtomicInteger();

    Echoer(FerryClient client, CountDownLatch echoed) {
      this.client = client;
      this.echoed = echoed;
    }

    @Override
    public void onMessage(ReceivedMessage message) {
      // The message is already stored durably. sendAsync encrypts the echo and puts it in the
      // durable outbox before it returns; the outbox delivers it, also across restarts. If this
      // method threw, the message would be handed over again later (at least once), so catch
      // what a send can refuse at once.
      log("message " + message.messageId() + " from " + message.contactLabel());
      try {
        client.sendAsync(message.contactLabel(), ECHO_PREFIX + message.text());
      } catch (FerryException e) {
        // TOO_LARGE (the prefix made it too long), IDENTITY_CHANGED (verify first), ...
        log("cannot echo to " + message.contactLabel() + ": " + e.reason());
      }
    }

    @Override
    public void onContactEstablished(String label) {
      log("contact established: " + label);
    }

    @Override
    public void onSendAccepted(String contactLabel, String messageId) {
      log("echo " + messageId + " to " + contactLabel + " accepted (" + accepted.incrementAndGet() + ")");
      echoed.countDown();
    }

    @Override
    public void onSendFailed(String contactLabel, String messageId, FerryException failure) {
      // Not for network outages (the outbox keeps trying then): this echo will never arrive.
      log("echo " + messageId + " to " + contactLabel + " failed: " + failure.reason());
    }

    @Override
    public void onIdentityChanged(String contactLabel, String newSafetyNumber) {
      // Sends to this contact are refused until someone compares the new safety number with
      // the contact's and calls verify(); a bot cannot compare, so it only says so.
      log("identity of " + contactLabel + " changed: echoes to it are held until verified "
          + "(ferry client --data DIR verify " + contactLabel + " NUMBER, with the bot stopped)");
    }

    @Override
    public void onConnectivityChanged(Connectivity state) {
      if (state.connected()) {
        log("online via " + state.carrier().orElse("?"));
      } else if (state.nextRetry().isPresent()) {
        // An outage: the loop tries again by itself (back-off with jitter, at most 60 s apart).
        log("offline (" + state.lastError().orElse("?") + "), next try at " + state.nextRetry().get());
      } else {
        log("offline"); // the loop was stopped (close())
      }
    }
  }

  /**
   * Makes a one-time invitation for a new contact (labelled guest-1, guest-2, ...) and writes
   * its URI to {@code file}, owner-only: whoever reads it first becomes the contact.
   */
  private static void writeInvitation(FerryClient client, Path file) throws IOException {
    int n = 1;
    while (client.contact("guest-" + n).isPresent()) {
      n++;
    }
    Invitation invitation = client.createInvitation("guest-" + n);
    // Written whole to a new owner-only file, then moved into place: a reader never sees half
    // of it, and it is never readable by others, not even for a moment.
    Path dir = file.toAbsolutePath().getParent();
    Path partial = Files.createTempFile(dir, ".invite", ".partial", OWNER_ONLY_FILE);
    try {
      Files.writeString(partial, invitation.uri() + "\n", StandardCharsets.US_ASCII);
      Files.move(partial, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    } finally {
      Files.deleteIfExists(partial);
    }
    log("invitation for " + invitation.label() + " written to " + file + " (valid until "
        + invitation.expiresAt() + ")");
  }

  /** The key in {@code data/store.key}; made (32 random bytes, owner-only) on the first run. */
  private static byte[] storageKey(Path data) throws IOException {
    Path keyFile = data.resolve("store.key");
    if (!Files.exists(keyFile)) {
      if (!Files.isDirectory(data)) {
        Files.createDirectories(data, OWNER_ONLY_DIR);
      }
      byte[] key = new byte[32];
      new SecureRandom().nextBytes(key);
      try (SeekableByteChannel ch = Files.newByteChannel(keyFile,
          Set.of(StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE, StandardOpenOption.SYNC),
          OWNER_ONLY_FILE)) {
        ch.write(ByteBuffer.wrap(key));
        return key;
      } catch (FileAlreadyExistsException e) {
        // Another bot made it just now; its key is the one (and build() will find it running).
      }
    }
    byte[] key = Files.readAllBytes(keyFile);
    if (key.length != 32) {
      throw new IOException(keyFile + " is damaged (not 32 bytes)");
    }
    return key;
  }

  private static Options parse(String[] args) {
    Path data = null;
    Optional<String> server = Optional.empty();
    Optional<Path> inviteFile = Optional.empty();
    int maxEchoes = 0;
    for (int i = 0; i < args.length; i++) {
      String value = i + 1 < args.length ? args[i + 1] : null;
      if (value == null) {
        throw new IllegalArgumentException(args[i] + " needs a value");
      }
      switch (args[i]) {
        case "--data" -> data = Path.of(value);
        case "--server" -> server = Optional.of(value);
        case "--invite-file" -> inviteFile = Optional.of(Path.of(value));
        case "--max-echoes" -> {
          try {
            maxEchoes = Integer.parseInt(value);
          } catch (NumberFormatException e) {
            maxEchoes = -1;
          }
          if (maxEchoes < 1) {
            throw new IllegalArgumentException("--max-echoes must be a number of at least 1: " + value);
          }
        }
        default -> throw new IllegalArgumentException("unknown option: " + args[i]);
      }
      i++;
    }
    if (data == null) {
      throw new IllegalArgumentException("--data DIR is required");
    }
    return new Options(data, server, inviteFile, maxEchoes);
  }

  /** The bot's log: one line per event, on standard output. */
  private static void log(String line) {
    System.out.println("echo-bot: " + line);
  }
}
