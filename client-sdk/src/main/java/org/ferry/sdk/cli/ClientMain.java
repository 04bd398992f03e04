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
import org.ferry.sdk.FerryClient;
import org.ferry.sdk.FerryException;
import org.ferry.sdk.Invitation;
import org.ferry.sdk.MessageListener;
import org.ferry.sdk.NetworkStatus;
import org.ferry.sdk.ReceivedMessage;
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
      ClientMain.Bridges.class,
      ClientMain.Status.class,
      ClientMain.Passphrase.class,
    })
public final class ClientMain {
  @Option(names = "--data", defaultValue = "./ferry-data/client", scope = CommandLine.ScopeType.INHERIT,
      description = "Data directory; default ${DEFAULT-VALUE}.")
  Path data;

  @Option(names = "--proxy", scope = CommandLine.ScopeType.INHERIT,
      description = "Proxy for every connection: socks5://HOST:PORT (Tor) or http://HOST:PORT. "
          + "Default: the FERRY_PROXY environment variable, else none.")
  String proxy;

  public static void main(String[] args) {
    // The command line's own logging: warnings and errors only, on stderr, no names.
    setIfAbsent("org.slf4j.simpleLogger.logFile", "System.err");
    setIfAbsent("org.slf4j.simpleLogger.defaultLogLevel", "warn");
    setIfAbsent("org.slf4j.simpleLogger.showThreadName", "false");
    setIfAbsent("org.slf4j.simpleLogger.log.io.grpc", "error");
    setIfAbsent("org.slf4j.simpleLogger.log.io.netty", "error");
    System.exit(run(args, new PrintWriter(System.out, true), new PrintWriter(System.err, true)));
  }

  private static void setIfAbsent(String key, String value) {
    if (System.getProperty(key) == null) {
      System.setProperty(key, value);
    }
  }

  /** Runs one command; returns the exit code. Visible for tests that drive the CLI in-process. */
  public static int run(String[] args, PrintWriter out, PrintWriter err) {
    CommandLine cli = new CommandLine(new ClientMain());
    cli.setOut(out);
    cli.setErr(err);
    cli.setExecutionExceptionHandler((e, commandLine, parseResult) -> {
      if (e instanceof FerryException fe) {
        err.println("ferry client: " + fe.getMessage());
        return 1;
      }
      if (e instanceof IllegalArgumentException) {
        err.println("ferry client: " + e.getMessage());
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

  /** The data directory's lock, for a command on an initialised client; never creates it. */
  DataDirectoryLock lockData() throws InterruptedException {
    CliStorageKey.requireExists(data);
    return lockData(data);
  }

  /** The lock on {@code dir}, created owner-only if missing, waiting up to {@link #LOCK_PATIENCE}. */
  DataDirectoryLock lockData(Path dir) throws InterruptedException {
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

  FerryClient open(DataDirectoryLock lock) throws Exception {
    CliStorageKey.ignoredPassphraseNote(data, passphrase())
        .ifPresent(note -> spec.commandLine().getErr().println("ferry client: " + note));
    return builder(CliStorageKey.load(data, passphrase()), lock).build();
  }

  FerryClient.Builder builder(byte[] key, DataDirectoryLock lock) {
    FerryClient.Builder b = FerryClient.builder().dataDirectory(lock).storageKey(key);
    String p = proxy != null ? proxy : System.getenv("FERRY_PROXY");
    if (p != null && !p.isBlank()) {
      b.proxy(p);
    }
    return b;
  }

  /** Makes a string from the network safe for one terminal line. */
  static String printable(String s) {
    StringBuilder b = new StringBuilder(s.length());
    s.codePoints().forEach(cp -> {
      if (cp == '\\') {
        b.append("\\\\");
      } else if (cp == '\n') {
        b.append("\\n");
      } else if (Character.isISOControl(cp) || Character.getType(cp) == Character.FORMAT) {
        b.append(String.format("\\u%04x", cp));
      } else {
        b.appendCodePoint(cp);
      }
    });
    return b.toString();
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

    @Override
    public Integer call() throws Exception {
      if (days < 1 || days > 30) {
        throw new IllegalArgumentException("--valid-for must be 1 to 30 days: " + days);
      }
      try (DataDirectoryLock lock = parent.lockData(); FerryClient client = parent.open(lock)) {
        Invitation invitation = client.createInvitation(name, Duration.ofDays(days));
        spec.commandLine().getOut().println(invitation.uri());
      }
      return 0;
    }
  }

  @Command(name = "accept", description = "Accepts an invitation and starts the session.")
  static final class Accept implements Callable<Integer> {
    @ParentCommand ClientMain parent;
    @CommandLine.Spec CommandLine.Model.CommandSpec spec;

    @Parameters(index = "0", paramLabel = "URI", description = "The ferry:invite/... URI.")
    String uri;

    @Option(names = "--name", required = true, description = "Label for the person who invited you.")
    String name;

    @Override
    public Integer call() throws Exception {
      try (DataDirectoryLock lock = parent.lockData(); FerryClient client = parent.open(lock)) {
        Contact contact;
        try {
          contact = client.acceptInvitation(uri, name);
        } catch (FerryException e) {
          if (e.reason() != FerryException.Reason.ALREADY_ACCEPTED) {
            throw e;
          }
          // Accepting twice (a script that retries) is no failure; say what happened.
          spec.commandLine().getErr().println("ferry client: " + e.getMessage());
          return 0;
        }
        spec.commandLine().getOut().println("added " + contact.label() + "; safety number "
            + contact.safetyNumber().orElse("(none yet)"));
      }
      return 0;
    }
  }

  @Command(name = "send", description = "Sends a message; exits 0 once the server holds it durably.")
  static final class Send implements Callable<Integer> {
    @ParentCommand ClientMain parent;
    @CommandLine.Spec CommandLine.Model.CommandSpec spec;

    @Parameters(index = "0", paramLabel = "LABEL") String label;
    @Parameters(index = "1", paramLabel = "TEXT") String text;

    @Override
    public Integer call() throws Exception {
      try (DataDirectoryLock lock = parent.lockData(); FerryClient client = parent.open(lock)) {
        boolean invited = client.contact(label).map(c -> c.state() == Contact.State.INVITED).orElse(false);
        client.send(label, text);
        if (invited) {
          // Send picked up their acceptance itself; say so, as receive would have.
          spec.commandLine().getErr().println(label + " accepted your invitation");
        }
        spec.commandLine().getErr().println("sent to " + label);
      }
      return 0;
    }
  }

  @Command(name = "receive", description = "Fetches and prints waiting messages, one 'LABEL: TEXT' line each.")
  static final class Receive implements Callable<Integer> {
    @ParentCommand ClientMain parent;
    @CommandLine.Spec CommandLine.Model.CommandSpec spec;

    @Option(names = "--timeout", defaultValue = "5",
        description = "Seconds to wait with nothing new before exiting; default ${DEFAULT-VALUE}.")
    double seconds;

    @Override
    public Integer call() throws Exception {
      if (seconds < 0 || seconds > 86_400) {
        throw new IllegalArgumentException("--timeout must be 0 to 86400 seconds: " + seconds);
      }
      PrintWriter out = spec.commandLine().getOut();
      PrintWriter err = spec.commandLine().getErr();
      try (DataDirectoryLock lock = parent.lockData(); FerryClient client = parent.open(lock)) {
        client.receive(Duration.ofMillis((long) (seconds * 1000)), new MessageListener() {
          @Override
          public void onMessage(ReceivedMessage m) {
            out.println(m.contactLabel() + ": " + printable(m.text()));
            out.flush();
          }

          @Override
          public void onContactEstablished(String label) {
            err.println(label + " accepted your invitation");
          }
        });
      }
      return 0;
    }
  }

  @Command(name = "contacts", description = "Lists contacts: label, state, safety number.",
      subcommands = {Contacts.Remove.class, Contacts.Rename.class})
  static final class Contacts implements Callable<Integer> {
    @ParentCommand ClientMain parent;
    @CommandLine.Spec CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() throws Exception {
      try (DataDirectoryLock lock = parent.lockData(); FerryClient client = parent.open(lock)) {
        for (Contact c : client.contacts()) {
          spec.commandLine().getOut().println(c.label() + "\t" + c.state().name().toLowerCase(java.util.Locale.ROOT)
              + "\t" + c.safetyNumber().orElse("-"));
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
        try (DataDirectoryLock lock = contacts.parent.lockData(); FerryClient client = contacts.parent.open(lock)) {
          client.removeContact(label);
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
        try (DataDirectoryLock lock = contacts.parent.lockData(); FerryClient client = contacts.parent.open(lock)) {
          client.renameContact(label, newLabel);
        }
        spec.commandLine().getErr().println("renamed " + label + " to " + newLabel);
        return 0;
      }
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
        try (DataDirectoryLock lock = bridges.parent.lockData(); FerryClient client = bridges.parent.open(lock)) {
          notes = client.addBridge(line);
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
        try (DataDirectoryLock lock = bridges.parent.lockData(); FerryClient client = bridges.parent.open(lock)) {
          client.bridges().forEach(spec.commandLine().getOut()::println);
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
      try (DataDirectoryLock lock = parent.lockData(); FerryClient client = parent.open(lock)) {
        String problem = null;
        try {
          client.checkConnection();
        } catch (FerryException e) {
          problem = e.getMessage();
        }
        for (NetworkStatus s : client.networkStatus()) {
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
      return org.ferry.proto.BridgeLine.parse(line).shortForm();
    }
  }
}
