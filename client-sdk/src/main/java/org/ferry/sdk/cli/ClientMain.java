package org.ferry.sdk.cli;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Optional;
import java.util.concurrent.Callable;
import org.ferry.datadir.DataDirectoryInUseException;
import org.ferry.datadir.DataDirectoryLock;
import org.ferry.proto.ServerAddress;
import org.ferry.sdk.Contact;
import org.ferry.sdk.DecryptionFailure;
import org.ferry.sdk.FerryClient;
import org.ferry.sdk.FerryException;
import org.ferry.sdk.SendStatus;
import org.ferry.sdk.Invitation;
import org.ferry.sdk.MessageListener;
import org.ferry.sdk.NetworkStatus;
import org.ferry.sdk.ReceivedMessage;
import org.ferry.sdk.cli.daemon.AcceptanceNotices;
import org.ferry.sdk.cli.daemon.DaemonCli;
import org.ferry.sdk.cli.daemon.DaemonServer;
import org.ferry.sdk.cli.daemon.JsonViews;
import org.ferry.sdk.cli.daemon.SlicedReceive;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;

/**
 * {@code ferry client}: the SDK on the command line. Output meant for scripts goes to stdout;
 * everything else, errors included (one line each), to stderr.
 */
@Command(
    name = "ferry client",
    mixinStandardHelpOptions = true,
    description = "A Ferry user on the command line.",
    subcommands = {
      ClientMain.Init.class,
      ClientMain.Invite.class,
      ClientMain.Accept.class,
      ClientMain.Send.class,
      ClientMain.Receive.class,
      ClientMain.Contacts.class,
      ClientMain.Verify.class,
      ClientMain.Bridges.class,
      ClientMain.Status.class,
      ClientMain.Sends.class,
      ClientMain.Passphrase.class,
      ClientMain.Daemon.class,
    })
public final class ClientMain {
  @Option(names = "--data", defaultValue = DaemonCli.DEFAULT_DATA, scope = CommandLine.ScopeType.INHERIT,
      description = "Data directory; default ${DEFAULT-VALUE}.")
  Path data;

  @Option(names = "--proxy", scope = CommandLine.ScopeType.INHERIT,
      description = "Proxy for every connection: socks5://HOST:PORT (Tor) or http://HOST:PORT. "
          + "Default: the FERRY_PROXY environment variable, else none.")
  String proxy;

  @Option(names = "--json", scope = CommandLine.ScopeType.INHERIT,
      description = "Print data as JSON, one object per line (contacts, receive, status, sends, bridges list, "
          + "invite, accept, send); the shapes are in docs/daemon.md.")
  boolean json;

  public static void main(String[] args) {
    // The command line's own logging: warnings and errors only, on stderr, no names.
    setIfAbsent("org.slf4j.simpleLogger.logFile", "System.err");
    setIfAbsent("org.slf4j.simpleLogger.defaultLogLevel", "warn");
    setIfAbsent("org.slf4j.simpleLogger.showThreadName", "false");
    setIfAbsent("org.slf4j.simpleLogger.log.io.grpc", "error");
    setIfAbsent("org.slf4j.simpleLogger.log.io.netty", "error");
    // UTF-8 in and out whatever the locale (for the log lines on stderr too); writers whose
    // failures (a full disk, a closed pipe) show in checkError, unlike System.out's.
    System.setErr(new java.io.PrintStream(
        new java.io.FileOutputStream(java.io.FileDescriptor.err), true, java.nio.charset.StandardCharsets.UTF_8));
    PrintWriter out = TerminalText.utf8(new java.io.FileOutputStream(java.io.FileDescriptor.out));
    PrintWriter err = TerminalText.utf8(new java.io.FileOutputStream(java.io.FileDescriptor.err));
    int exit;
    try {
      exit = run(Utf8Arguments.of(args), System.in, out, err);
    } catch (IllegalArgumentException e) {
      printError(err, e);
      exit = 2;
    }
    if (out.checkError() && exit == 0) {
      err.println("ferry client: could not write the output (is the disk full, or the reader gone?)");
      exit = 1;
    }
    err.flush();
    System.exit(exit);
  }

  private static void setIfAbsent(String key, String value) {
    if (System.getProperty(key) == null) {
      System.setProperty(key, value);
    }
  }

  /**
   * Exit code of {@code receive} when a message could not be decrypted or a session was
   * restarted: messages may have been lost (the warnings on stderr name the contacts). What
   * could be read was printed as usual.
   */
  public static final int EXIT_MESSAGES_MAY_BE_LOST = 3;

  /** Runs one command; returns the exit code. Visible for tests that drive the CLI in-process. */
  public static int run(String[] args, PrintWriter out, PrintWriter err) {
    return run(args, java.io.InputStream.nullInputStream(), out, err);
  }

  /**
   * One error line. Messages may quote what the user gave (a label, a line), so they are
   * escaped like message text.
   */
  private static void printError(PrintWriter err, Exception e) {
    err.println("ferry client: " + TerminalText.escape(String.valueOf(e.getMessage())));
  }

  /**
   * Runs one command with {@code in} as its standard input; returns the exit code. When a
   * daemon serves the data directory, the command runs there (same output, same exit code).
   */
  public static int run(String[] args, java.io.InputStream in, PrintWriter out, PrintWriter err) {
    java.util.OptionalInt viaDaemon = DaemonCli.tryRun(args, in, out, err);
    if (viaDaemon.isPresent()) {
      return viaDaemon.getAsInt();
    }
    return execute(new ClientMain(), args, in, out, err);
  }

  /**
   * What a command run inside the daemon, on a caller's behalf, works with.
   *
   * @param client the daemon's open client, used instead of opening the store
   * @param cwd the caller's working directory, against which relative file names are resolved
   * @param callerGone whether the caller went away (a long receive then ends)
   * @param acceptances acceptances the daemon's background loop took, for receive and send to print
   */
  public record Remote(FerryClient client, Path cwd, java.util.function.BooleanSupplier callerGone,
      AcceptanceNotices acceptances) {}

  /** Runs one command inside the daemon for a caller; returns the exit code. */
  public static int runForDaemon(Remote remote, String[] args, java.io.InputStream in, PrintWriter out,
      PrintWriter err) {
    ClientMain main = new ClientMain();
    main.remote = remote;
    return execute(main, args, in, out, err);
  }

  private static int execute(ClientMain main, String[] args, java.io.InputStream in, PrintWriter out,
      PrintWriter err) {
    main.stdin = in;
    CommandLine cli = new CommandLine(main);
    cli.setOut(out);
    cli.setErr(err);
    cli.setExecutionExceptionHandler((e, commandLine, parseResult) -> {
      if (e instanceof FerryException || e instanceof Receive.OutputFailed) {
        printError(err, e);
        return 1;
      }
      if (e instanceof IllegalArgumentException) {
        printError(err, e);
        return 2;
      }
      throw e;
    });
    return cli.execute(args);
  }

  private static Optional<String> passphrase() {
    return Optional.ofNullable(System.getenv(CliStorageKey.PASSPHRASE_ENV)).filter(p -> !p.isEmpty());
  }

  /**
   * How long a command waits for another command (or process) using the same data directory to
   * finish: commands are short (a receive waits 5 s for news by default), so two started at once
   * from a script run one after the other instead of one failing; a long-running holder still
   * gets a clear refusal.
   */
  static final Duration LOCK_PATIENCE = Duration.ofSeconds(10);

  @CommandLine.Spec CommandLine.Model.CommandSpec spec;

  /** Standard input, for text and invitations given as {@code -}. */
  java.io.InputStream stdin;

  /** Set when this command runs inside the daemon; null in-process. */
  Remote remote;

  /** The client a command works on, and the lock it holds in-process. */
  record Session(FerryClient client, DataDirectoryLock lock) implements AutoCloseable {
    @Override
    public void close() {
      if (lock != null) {
        try {
          client.close();
        } finally {
          lock.close();
        }
      }
    }
  }

  /**
   * The client for a command on an initialised client: opened (under the data directory's lock)
   * in-process; the daemon's own when run for the daemon.
   */
  Session session() throws Exception {
    if (remote != null) {
      return new Session(remote.client(), null);
    }
    DataDirectoryLock lock = lockData();
    try {
      return new Session(open(lock), lock);
    } catch (Exception | Error e) {
      lock.close();
      throw e;
    }
  }

  /** {@code file} as the user meant it: relative to their working directory, also in the daemon. */
  Path resolve(Path file) {
    return remote == null ? file : remote.cwd().resolve(file);
  }

  /** Prints {@code value} as one JSON line. */
  void printJson(com.google.gson.JsonElement value) {
    spec.commandLine().getOut().println(JsonViews.line(value));
  }

  /** The data directory's lock, for a command on an initialised client; never creates it. */
  DataDirectoryLock lockData() throws InterruptedException {
    requireNoDaemon();
    CliStorageKey.requireExists(data);
    return lockData(data);
  }

  /** The lock on {@code dir}, created owner-only if missing, waiting up to {@link #LOCK_PATIENCE}. */
  DataDirectoryLock lockData(Path dir) throws InterruptedException {
    requireNoDaemon();
    try {
      return DataDirectoryLock.acquire(dir, LOCK_PATIENCE, () -> spec.commandLine().getErr().println(
          "ferry client: waiting for " + dir + ", which another Ferry process is using..."));
    } catch (DataDirectoryInUseException e) {
      throw new FerryException(FerryException.Reason.STORAGE, e.getMessage(), e);
    } catch (java.io.IOException e) {
      throw new FerryException(FerryException.Reason.STORAGE,
          "cannot open data directory " + dir + ": " + e.getMessage(), e);
    }
  }

  /** Refuses a command that needs the data directory to itself while the daemon has it. */
  void requireNoDaemon() {
    if (remote != null) {
      throw new FerryException(FerryException.Reason.STORAGE, "the Ferry daemon for " + data
          + " is using it, and this command runs only without it: stop the daemon first");
    }
  }

  FerryClient open(DataDirectoryLock lock) throws Exception {
    CliStorageKey.ignoredPassphraseNote(data, passphrase())
        .ifPresent(note -> spec.commandLine().getErr().println("ferry client: " + note));
    return builder(CliStorageKey.load(data, passphrase()), lock).build();
  }

  FerryClient.Builder builder(byte[] key, DataDirectoryLock lock) {
    FerryClient.Builder b = FerryClient.builder().dataDirectory(lock).storageKey(key);
    proxySetting().ifPresent(b::proxy);
    return b;
  }

  /** The proxy this command names: {@code --proxy}, else {@code FERRY_PROXY}; blank is none. */
  Optional<String> proxySetting() {
    return Optional.ofNullable(proxy != null ? proxy : System.getenv("FERRY_PROXY")).filter(p -> !p.isBlank());
  }

  @Command(name = "init", description = "Creates this user's identity on a home server.")
  static final class Init implements Callable<Integer> {
    @ParentCommand ClientMain parent;
    @CommandLine.Spec CommandLine.Model.CommandSpec spec;

    @Option(names = "--server", required = true, description = "Home server address, HOST:PORT#FINGERPRINT.")
    String server;

    @Option(names = "--creation-token-file",
        description = "File whose first line is the home server operator's creation token, "
            + "for a server that requires one.")
    Path creationTokenFile;

    @Option(names = "--bridge", paramLabel = "LINE",
        description = "A bridge line for the home server (repeatable), as a relay prints it.")
    java.util.List<String> bridges = new java.util.ArrayList<>();

    @Override
    public Integer call() throws Exception {
      parent.requireNoDaemon();
      ServerAddress address = ServerAddress.parse(server);
      for (String line : bridges) {
        org.ferry.proto.BridgeLine.read(line).notes()
            .forEach(note -> spec.commandLine().getErr().println("ferry client: note: " + note));
      }
      String creationToken = creationTokenFile == null ? "" : readToken(creationTokenFile);
      try (DataDirectoryLock lock = parent.lockData(parent.data)) {
        return initialize(lock, address, creationToken);
      }
    }

    private Integer initialize(DataDirectoryLock lock, ServerAddress address, String creationToken)
        throws Exception {
      if (CliStorageKey.exists(parent.data)) {
        throw new FerryException(FerryException.Reason.ALREADY_INITIALIZED,
            "a Ferry client already lives in " + parent.data);
      }
      Path store = parent.data.resolve("store");
      Path obfs4 = parent.data.resolve("obfs4");
      boolean storeExisted = java.nio.file.Files.exists(store);
      boolean obfs4Existed = java.nio.file.Files.exists(obfs4);
      byte[] key = CliStorageKey.create(parent.data, passphrase());
      try (FerryClient client = parent.builder(key, lock).build()) {
        client.initialize(address, creationToken, bridges);
      } catch (FerryException | IllegalArgumentException e) {
        // Undo exactly what init made, so that it can simply be run again.
        CliStorageKey.delete(parent.data);
        if (!storeExisted) {
          deleteRecursively(store);
        }
        if (!obfs4Existed) {
          deleteRecursively(obfs4);
        }
        // The directory itself stays, owner-only with its lock file: removing a lock file that
        // another command may be waiting on would let two commands in at once.
        throw e;
      }
      spec.commandLine().getErr().println(CliStorageKey.protectionNote(parent.data));
      spec.commandLine().getOut().println("initialised with server " + address.hostPort());
      return 0;
    }

    /** The first line of the file; IllegalArgumentException (one line, exit 2) if unusable. */
    private static String readToken(Path file) {
      String token;
      try {
        token = java.nio.file.Files.readAllLines(file, java.nio.charset.StandardCharsets.UTF_8)
            .stream().findFirst().orElse("").strip();
      } catch (java.io.IOException e) {
        throw new IllegalArgumentException("cannot read creation token file " + file, e);
      }
      if (token.isEmpty()) {
        throw new IllegalArgumentException("creation token file " + file + " is empty");
      }
      return token;
    }

    private static void deleteRecursively(Path dir) throws java.io.IOException {
      if (!java.nio.file.Files.exists(dir)) {
        return;
      }
      try (var paths = java.nio.file.Files.walk(dir)) {
        for (Path p : paths.sorted(java.util.Comparator.reverseOrder()).toList()) {
          java.nio.file.Files.deleteIfExists(p);
        }
      }
    }
  }

  @Command(name = "invite", description = "Prints a one-time invitation URI for a new contact.")
  static final class Invite implements Callable<Integer> {
    @ParentCommand ClientMain parent;
    @CommandLine.Spec CommandLine.Model.CommandSpec spec;

    @Option(names = "--name", required = true, description = "Label for the person you invite.")
    String name;

    @Option(names = "--valid-for", defaultValue = "7", description = "Days the invitation stays valid (1-30); default ${DEFAULT-VALUE}.")
    int days;

    @Option(names = "--qr", description = "Print the invitation as a QR code to scan: standard output then "
        + "holds the code alone, and the URI goes to standard error. Drawn for a dark terminal "
        + "background; on a light one the code shows in negative, which most cameras read too.")
    boolean qr;

    @Option(names = "--qr-png", paramLabel = "FILE", description = "Also write the QR code to FILE, a PNG "
        + "image, owner-only; an existing FILE is never replaced. Delete it once the invitation is used.")
    Path qrPng;

    @Override
    public Integer call() throws Exception {
      if (days < 1 || days > 30) {
        throw new IllegalArgumentException("--valid-for must be 1 to 30 days: " + days);
      }
      if (qrPng != null) {
        InvitationQr.checkCanCreate(parent.resolve(qrPng)); // before an invitation is made for nothing
      }
      try (Session session = parent.session()) {
        Invitation invitation = session.client().createInvitation(name, Duration.ofDays(days));
        if (qrPng != null) {
          InvitationQr.writePng(invitation.uri(), parent.resolve(qrPng));
          spec.commandLine().getErr().println("wrote the invitation's QR code to " + qrPng);
        }
        if (parent.json) {
          com.google.gson.JsonObject o = new com.google.gson.JsonObject();
          o.addProperty("uri", invitation.uri());
          parent.printJson(o);
        } else if (qr) {
          spec.commandLine().getOut().print(InvitationQr.terminal(invitation.uri()));
          spec.commandLine().getOut().flush();
          spec.commandLine().getErr().println(invitation.uri());
        } else {
          spec.commandLine().getOut().println(invitation.uri());
        }
      }
      return 0;
    }
  }

  @Command(name = "accept", description = "Accepts an invitation and starts the session.")
  static final class Accept implements Callable<Integer> {
    @ParentCommand ClientMain parent;
    @CommandLine.Spec CommandLine.Model.CommandSpec spec;

    @Parameters(index = "0", arity = "0..1", paramLabel = "URI",
        description = "The ferry:invite/... URI, or - to read it from standard input "
            + "(which keeps it out of the process list and shell history).")
    String uri;

    @Option(names = "--qr-image", paramLabel = "FILE",
        description = "Read the invitation from the QR code in FILE (PNG or JPEG), instead of URI.")
    Path qrImage;

    @Option(names = "--name", required = true, description = "Label for the person who invited you.")
    String name;

    @Override
    public Integer call() throws Exception {
      if ((uri == null) == (qrImage == null)) {
        throw new IllegalArgumentException("give the invitation either as URI (or - for standard input) "
            + "or with --qr-image FILE");
      }
      String fromImage = qrImage == null ? null : InvitationQr.decode(parent.resolve(qrImage));
      try (Session session = parent.session()) {
        Contact contact;
        try {
          contact = session.client().acceptInvitation(fromImage != null ? fromImage
              : "-".equals(uri) ? CliInput.read(parent.stdin, "standard input").strip() : uri, name);
        } catch (FerryException e) {
          if (e.reason() != FerryException.Reason.ALREADY_ACCEPTED) {
            throw e;
          }
          // Accepting twice (a script that retries) is no failure; say what happened.
          spec.commandLine().getErr().println("ferry client: " + e.getMessage());
          return 0;
        }
        if (parent.json) {
          parent.printJson(JsonViews.contact(contact));
        } else {
          spec.commandLine().getOut().println("added " + contact.label() + "; safety number "
              + contact.safetyNumber().orElse("(none yet)"));
        }
      }
      return 0;
    }
  }

  @Command(name = "send", description = "Sends a message; exits 0 once the server holds it durably.")
  static final class Send implements Callable<Integer> {
    @ParentCommand ClientMain parent;
    @CommandLine.Spec CommandLine.Model.CommandSpec spec;

    @Parameters(index = "0", paramLabel = "LABEL") String label;

    @Parameters(index = "1", arity = "0..1", paramLabel = "TEXT",
        description = "The message, or - to read it from standard input (one final line break "
            + "dropped). Text on the command line is visible to every local user (ps) and "
            + "stays in shell history: prefer - or --file for anything private.")
    String text;

    @Option(names = "--file", paramLabel = "FILE",
        description = "Read the message from FILE (UTF-8; one final line break dropped).")
    Path file;

    @Option(names = "--null",
        description = "With - or --file: the input holds several messages, each ended by a NUL "
            + "character (as find -print0 writes), sent in order.")
    boolean nulSeparated;

    @Override
    public Integer call() throws Exception {
      java.util.List<String> texts = texts();
      int sent = 0;
      try (Session session = parent.session()) {
        FerryClient client = session.client();
        boolean invited = parent.remote != null ? parent.remote.acceptances().take().contains(label)
            : client.contact(label).map(c -> c.state() == Contact.State.INVITED).orElse(false);
        for (String t : texts) {
          String id = client.send(label, t);
          sent++;
          if (parent.json) {
            parent.printJson(JsonViews.sent(label, id));
          }
        }
        if (invited) {
          // Send picked up their acceptance itself; say so, as receive would have.
          spec.commandLine().getErr().println(label + " accepted your invitation");
        }
        boolean forwarded = client.sends().stream().anyMatch(
            s -> s.state() == SendStatus.State.FORWARDING && s.contactLabel().equals(label));
        spec.commandLine().getErr().println((texts.size() == 1 ? "sent to " + label
            : "sent " + sent + " messages to " + label)
            + (forwarded ? " (your server holds it for theirs; 'ferry client sends' shows until it is delivered)" : ""));
      } catch (FerryException e) {
        if (sent > 0) {
          spec.commandLine().getErr().println("sent " + sent + " of " + texts.size() + " messages to " + label);
        }
        throw e;
      }
      return 0;
    }

    /** The messages to send, read and checked in full before any is sent. */
    private java.util.List<String> texts() {
      boolean fromStdin = "-".equals(text);
      if ((text != null) == (file != null)) {
        throw new IllegalArgumentException("give the message as TEXT, as - (standard input) or with --file, once");
      }
      if (nulSeparated && !fromStdin && file == null) {
        throw new IllegalArgumentException("--null reads several messages from - or --file, not from TEXT");
      }
      String source = fromStdin ? "standard input" : file != null ? "file " + file : "the message";
      String input = fromStdin ? CliInput.read(parent.stdin, source)
          : file != null ? CliInput.read(parent.resolve(file), file) : text;
      java.util.List<String> texts = nulSeparated ? CliInput.nulSeparated(input)
          : java.util.List.of(fromStdin || file != null ? CliInput.oneMessage(input) : input);
      if (texts.isEmpty() || texts.stream().anyMatch(String::isEmpty)) {
        throw new IllegalArgumentException(source + " holds an empty message; nothing was sent");
      }
      texts.forEach(t -> CliInput.undamaged(t, source));
      return texts;
    }
  }

  @Command(name = "receive", description = "Fetches and prints waiting messages, one 'LABEL: TEXT' line each. "
      + "Exits " + EXIT_MESSAGES_MAY_BE_LOST + " (after a warning on stderr) if a message could not be decrypted "
      + "or a session was restarted: messages may have been lost.")
  static final class Receive implements Callable<Integer> {
    @ParentCommand ClientMain parent;
    @CommandLine.Spec CommandLine.Model.CommandSpec spec;

    @Option(names = "--timeout", defaultValue = "5",
        description = "Seconds to wait with nothing new before exiting; default ${DEFAULT-VALUE}.")
    double seconds;

    @Option(names = "--max", paramLabel = "N",
        description = "Take at most N messages and leave the rest for the next receive (use it "
            + "with head: a pipe cannot tell ferry what its reader threw away).")
    Integer max;

    /** Writing a message out failed; it stays in the local inbox. */
    static final class OutputFailed extends RuntimeException {
      private static final long serialVersionUID = 1L;

      OutputFailed() {
        super("could not write the messages out (is the disk full, or the reader gone?); "
            + "each message not written stays for the next receive");
      }
    }

    @Override
    public Integer call() throws Exception {
      if (seconds < 0 || seconds > 86_400) {
        throw new IllegalArgumentException("--timeout must be 0 to 86400 seconds: " + seconds);
      }
      if (max != null && max < 1) {
        throw new IllegalArgumentException("--max must be at least 1: " + max);
      }
      PrintWriter out = spec.commandLine().getOut();
      PrintWriter err = spec.commandLine().getErr();
      boolean[] lost = {false};
      try (Session session = parent.session()) {
        MessageListener listener = new MessageListener() {
          @Override
          public void onMessage(ReceivedMessage m) {
            // The SDK forgets a message only once this returns: so only once it is written out.
            out.print(parent.json ? JsonViews.line(JsonViews.message(m)) + "\n"
                : TerminalText.message(m.contactLabel(), m.text()));
            out.flush();
            if (out.checkError()) {
              throw new OutputFailed();
            }
          }

          @Override
          public void onContactEstablished(String label) {
            err.println(label + " accepted your invitation");
          }

          @Override
          public void onDecryptionFailure(DecryptionFailure f) {
            lost[0] = true;
            err.println("ferry client: warning: " + switch (f.kind()) {
              case OUT_OF_STEP -> "a message from " + f.contactLabel() + " could not be decrypted (your sessions "
                  + "are out of step, e.g. after a restore from a backup); the session is being restarted; "
                  + "ask " + f.contactLabel() + " to send it again";
              case IDENTITY_CHANGED -> "a message in " + f.contactLabel() + "'s name came with a different "
                  + "safety number" + f.newSafetyNumber().map(n -> " (" + n + ")").orElse("") + " and was not read; "
                  + "nothing is sent to " + f.contactLabel() + " until you compare it with theirs in person and run "
                  + "'ferry client verify " + f.contactLabel() + " NUMBER'";
              case UNREADABLE -> "a message in " + f.contactLabel() + "'s mailbox was damaged or forged and was not read";
            });
          }

          @Override
          public void onSessionRestarted(String label) {
            lost[0] = true;
            err.println("ferry client: warning: the session with " + label + " was restarted; messages sent "
                + "shortly before, either way, may have been lost: ask " + label + " about them");
          }
        };
        Duration idle = Duration.ofMillis((long) (seconds * 1000));
        int most = max == null ? Integer.MAX_VALUE : max;
        java.util.Set<String> failedBefore = failedSends(session.client());
        if (parent.remote != null) {
          parent.remote.acceptances().take().forEach(listener::onContactEstablished);
          SlicedReceive.receive(session.client(), idle, most, listener, parent.remote.callerGone());
          parent.remote.acceptances().take().forEach(listener::onContactEstablished);
        } else {
          session.client().receive(idle, most, listener);
        }
        // Outcomes of sends to other servers come in with the messages: say which failed.
        for (SendStatus s : session.client().sends()) {
          if (s.state() == SendStatus.State.FAILED && !failedBefore.contains(s.messageId())) {
            err.println("ferry client: warning: a message to " + TerminalText.escape(s.contactLabel())
                + " was not delivered: " + TerminalText.escape(s.failure().map(SendStatus.Failure::message).orElse("?"))
                + " (ferry client sends lists it)");
          }
        }
      }
      return lost[0] ? EXIT_MESSAGES_MAY_BE_LOST : 0;
    }
  }

  private static java.util.Set<String> failedSends(FerryClient client) {
    java.util.Set<String> ids = new java.util.HashSet<>();
    for (SendStatus s : client.sends()) {
      if (s.state() == SendStatus.State.FAILED) {
        ids.add(s.messageId());
      }
    }
    return ids;
  }

  @Command(name = "contacts", description = "Lists contacts: label, state, safety number, verified or "
      + "unverified, and 'KEY CHANGED: ...' while a new identity key waits for verification.",
      subcommands = {Contacts.Remove.class, Contacts.Rename.class})
  static final class Contacts implements Callable<Integer> {
    @ParentCommand ClientMain parent;
    @CommandLine.Spec CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() throws Exception {
      try (Session session = parent.session()) {
        for (Contact c : session.client().contacts()) {
          if (parent.json) {
            parent.printJson(JsonViews.contact(c));
            continue;
          }
          spec.commandLine().getOut().println(c.label() + "\t" + c.state().name().toLowerCase(java.util.Locale.ROOT)
              + "\t" + c.safetyNumber().orElse("-") + "\t" + (c.verified() ? "verified" : "unverified")
              + c.pendingSafetyNumber().map(n -> "\tKEY CHANGED: new safety number " + n
                  + " (sending is blocked until you verify it)").orElse(""));
        }
      }
      return 0;
    }

    @Command(name = "remove", description = "Removes a contact, and your mailbox for them on your server.")
    static final class Remove implements Callable<Integer> {
      @ParentCommand Contacts contacts;
      @CommandLine.Spec CommandLine.Model.CommandSpec spec;

      @Parameters(index = "0", paramLabel = "LABEL") String label;

      @Override
      public Integer call() throws Exception {
        try (Session session = contacts.parent.session()) {
          session.client().removeContact(label);
        }
        spec.commandLine().getErr().println("removed " + label);
        return 0;
      }
    }

    @Command(name = "rename", description = "Gives a contact another label.")
    static final class Rename implements Callable<Integer> {
      @ParentCommand Contacts contacts;
      @CommandLine.Spec CommandLine.Model.CommandSpec spec;

      @Parameters(index = "0", paramLabel = "OLD") String label;
      @Parameters(index = "1", paramLabel = "NEW") String newLabel;

      @Override
      public Integer call() throws Exception {
        try (Session session = contacts.parent.session()) {
          session.client().renameContact(label, newLabel);
        }
        spec.commandLine().getErr().println("renamed " + label + " to " + newLabel);
        return 0;
      }
    }
  }

  @Command(name = "verify", description = "Confirms a contact's safety number after comparing it with "
      + "theirs in person; after a key change, unblocks sending and restarts the session under the new key.")
  static final class Verify implements Callable<Integer> {
    @ParentCommand ClientMain parent;
    @CommandLine.Spec CommandLine.Model.CommandSpec spec;

    @Parameters(index = "0", paramLabel = "LABEL") String label;

    @Parameters(index = "1", paramLabel = "NUMBER",
        description = "The 60-digit safety number (quote it if it has spaces), or - to read it from standard input.")
    String number;

    @Override
    public Integer call() throws Exception {
      String given = "-".equals(number) ? CliInput.read(parent.stdin, "standard input") : number;
      try (Session session = parent.session()) {
        FerryClient client = session.client();
        boolean changed = client.contact(label).flatMap(Contact::pendingSafetyNumber).isPresent();
        client.verify(label, given);
        spec.commandLine().getErr().println(changed
            ? "verified the new safety number of " + label + "; sending is unblocked and the session is being "
                + "restarted (it works once " + label + "'s client has answered: run receive)"
            : "verified " + label);
      }
      return 0;
    }
  }

  @Command(name = "bridges", description = "Lists or adds the home server's bridge lines.",
      subcommands = {Bridges.Add.class, Bridges.ListLines.class})
  static final class Bridges {
    @ParentCommand ClientMain parent;

    @Command(name = "add", description = "Adds a bridge line for the home server, as a relay prints it.")
    static final class Add implements Callable<Integer> {
      @ParentCommand Bridges bridges;
      @CommandLine.Spec CommandLine.Model.CommandSpec spec;

      @Parameters(index = "0", arity = "1..*", paramLabel = "LINE",
          description = "The bridge line (quote it, or give its words as they are).")
      java.util.List<String> words;

      @Override
      public Integer call() throws Exception {
        String line = String.join(" ", words);
        java.util.List<String> notes;
        try (Session session = bridges.parent.session()) {
          notes = session.client().addBridge(line);
        }
        notes.forEach(note -> spec.commandLine().getErr().println("ferry client: note: " + note));
        boolean skipped = notes.stream().anyMatch(n -> n.startsWith("skipped"));
        spec.commandLine().getErr().println(skipped ? "no bridge added" : "bridge added");
        return 0;
      }
    }

    @Command(name = "list", description = "Prints the home server's bridge lines, one per line.")
    static final class ListLines implements Callable<Integer> {
      @ParentCommand Bridges bridges;
      @CommandLine.Spec CommandLine.Model.CommandSpec spec;

      @Override
      public Integer call() throws Exception {
        try (Session session = bridges.parent.session()) {
          for (String line : session.client().bridges()) {
            if (bridges.parent.json) {
              bridges.parent.printJson(JsonViews.bridge(line));
            } else {
              spec.commandLine().getOut().println(line);
            }
          }
        }
        return 0;
      }
    }
  }

  @Command(name = "passphrase", description = "Switches what protects the local store: a passphrase "
      + "(from " + CliStorageKey.PASSPHRASE_ENV + ") or the key file beside it.",
      subcommands = {Passphrase.Set.class, Passphrase.Remove.class})
  static final class Passphrase {
    @ParentCommand ClientMain parent;

    @Command(name = "set", description = "Protects the store with the passphrase in "
        + CliStorageKey.PASSPHRASE_ENV + " instead of its key file, which is removed.")
    static final class Set implements Callable<Integer> {
      @ParentCommand Passphrase passphrase;
      @CommandLine.Spec CommandLine.Model.CommandSpec spec;

      @Override
      public Integer call() throws Exception {
        ClientMain parent = passphrase.parent;
        parent.requireNoDaemon(); // the daemon took the passphrase from its own environment
        String newPassphrase = passphrase().orElseThrow(() -> new IllegalArgumentException(
            "set " + CliStorageKey.PASSPHRASE_ENV + " to the passphrase that is to protect the store"));
        try (DataDirectoryLock lock = parent.lockData()) {
          if (CliStorageKey.usesPassphrase(parent.data)) {
            throw new IllegalArgumentException("this store is protected by a passphrase already");
          }
          byte[] key = CliStorageKey.load(parent.data, Optional.empty());
          parent.builder(key, lock).build().close(); // the key opens the store
          CliStorageKey.protectWithPassphrase(parent.data, key, newPassphrase);
        }
        spec.commandLine().getErr().println("the store is now protected by your passphrase; keep it safe, it "
            + "cannot be recovered. The store's key is unchanged: a copy of the old key file still opens it.");
        return 0;
      }
    }

    @Command(name = "remove", description = "Keeps the store's key in a key file beside it again; "
        + CliStorageKey.PASSPHRASE_ENV + " must hold the current passphrase.")
    static final class Remove implements Callable<Integer> {
      @ParentCommand Passphrase passphrase;
      @CommandLine.Spec CommandLine.Model.CommandSpec spec;

      @Override
      public Integer call() throws Exception {
        ClientMain parent = passphrase.parent;
        parent.requireNoDaemon(); // the daemon took the passphrase from its own environment
        try (DataDirectoryLock lock = parent.lockData()) {
          if (!CliStorageKey.usesPassphrase(parent.data)) {
            throw new IllegalArgumentException("this store is not protected by a passphrase");
          }
          byte[] key = CliStorageKey.load(parent.data, passphrase());
          parent.builder(key, lock).build().close(); // the passphrase is right: the key opens the store
          CliStorageKey.keepInKeyFile(parent.data, key);
        }
        spec.commandLine().getErr().println(CliStorageKey.protectionNote(parent.data));
        return 0;
      }
    }
  }

  @Command(name = "status", description = "Connects to the home server and prints the carrier in "
      + "use and the health of each way to reach each server.")
  static final class Status implements Callable<Integer> {
    @ParentCommand ClientMain parent;
    @CommandLine.Spec CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() throws Exception {
      PrintWriter out = spec.commandLine().getOut();
      try (Session session = parent.session()) {
        FerryClient client = session.client();
        String problem = null;
        try {
          client.checkConnection();
        } catch (FerryException e) {
          problem = e.getMessage();
        }
        for (NetworkStatus s : client.networkStatus()) {
          if (parent.json) {
            parent.printJson(JsonViews.network(s));
            continue;
          }
          out.println("server " + s.server() + ": "
              + s.inUse().map(l -> "connected via " + shortLine(l)).orElse("not connected"));
          for (NetworkStatus.Line l : s.lines()) {
            String health = l.backingOffUntil().map(t -> "failing, next try after " + t)
                .orElse(l.successes() == 0 && l.failures() == 0 ? "untried" : "ok");
            out.println("  " + shortLine(l.line()) + "\t" + health + "\t" + l.successes() + " ok, "
                + l.failures() + " failed" + l.lastSuccess().map(t -> ", last ok " + t).orElse(""));
          }
        }
        if (problem != null) {
          spec.commandLine().getErr().println("ferry client: " + problem);
          return 1;
        }
      }
      return 0;
    }

    /** A line without its secret path or cert, for screens that others may see. */
    static String shortLine(String line) {
      return JsonViews.shortLine(line);
    }
  }

  @Command(name = "sends", description = "Lists sends not settled yet and the last failed ones, one per "
      + "line: queued (in the local outbox), forwarding (held by your home server for the contact's server) "
      + "or failed (with the reason and the hop that failed). Makes no connection.")
  static final class Sends implements Callable<Integer> {
    @ParentCommand ClientMain parent;
    @CommandLine.Spec CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() throws Exception {
      PrintWriter out = spec.commandLine().getOut();
      try (Session session = parent.session()) {
        for (SendStatus s : session.client().sends()) {
          if (parent.json) {
            parent.printJson(JsonViews.send(s));
            continue;
          }
          out.println(s.state().name().toLowerCase(java.util.Locale.ROOT) + "\t" + TerminalText.escape(s.contactLabel())
              + "\t" + s.messageId() + "\t" + s.server() + "\tqueued " + s.queuedAt()
              + s.heldByHomeSince().map(t -> "\theld by home server since " + t).orElse("")
              + s.failure().map(f -> "\t" + f.reason() + ": " + TerminalText.escape(f.message())).orElse(""));
        }
      }
      return 0;
    }
  }

  @Command(name = "daemon", description = "Keeps this client open and serves JSON-RPC 2.0 on the socket "
      + DaemonCli.SOCKET_NAME + " in the data directory (owner-only; docs/daemon.md). The other commands "
      + "run through it while it runs. Stops on SIGTERM or Ctrl-C.")
  static final class Daemon implements Callable<Integer> {
    @ParentCommand ClientMain parent;
    @CommandLine.Spec CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() throws Exception {
      if (parent.remote != null) {
        throw new FerryException(FerryException.Reason.STORAGE,
            "a Ferry daemon is running for " + parent.data + " already");
      }
      CliStorageKey.requireExists(parent.data);
      DataDirectoryLock lock;
      try {
        // At once: a daemon is long-running, so waiting for the holder makes no sense.
        lock = DataDirectoryLock.acquire(parent.data);
      } catch (DataDirectoryInUseException e) {
        throw new FerryException(FerryException.Reason.STORAGE, e.getMessage(), e);
      }
      FerryClient client;
      DaemonServer server;
      try {
        client = parent.open(lock);
        try {
          server = DaemonServer.start(parent.data, client, parent.proxySetting());
          client.start(); // after the server noted who is invited: see AcceptanceNotices
        } catch (Exception | Error e) {
          client.close();
          throw e;
        }
      } catch (Exception | Error e) {
        lock.close();
        throw e;
      }
      java.util.concurrent.CountDownLatch stopped = new java.util.concurrent.CountDownLatch(1);
      Runtime.getRuntime().addShutdownHook(new Thread(() -> {
        // SIGTERM or Ctrl-C: no new calls, the socket file goes, then the store closes.
        server.close();
        client.close();
        lock.close();
        stopped.countDown();
      }, "ferry-daemon-stop"));
      spec.commandLine().getErr().println("ferry client daemon: serving " + server.socket()
          + " (stop with Ctrl-C or SIGTERM)");
      stopped.await();
      return 0;
    }
  }
}
