package org.ferry.sdk.cli.daemon;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.io.Writer;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Base64;
import java.util.List;
import java.util.Optional;
import java.util.function.BooleanSupplier;
import org.ferry.sdk.FerryClient;
import org.ferry.sdk.FerryException;
import org.ferry.sdk.MessageListener;
import org.ferry.sdk.NetworkStatus;
import org.ferry.sdk.ReceivedMessage;
import org.ferry.sdk.cli.ClientMain;

/** The daemon's JSON-RPC methods (docs/daemon.md), over its one {@link FerryClient}. */
final class DaemonMethods {
  /**
   * JSON-RPC error codes for {@link FerryException.Reason}s, by name: 1001 onwards, in this
   * order, never renumbered; a reason not listed yet gets {@link #OTHER_REASON}. The error's
   * {@code data.reason} carries the name in any case.
   */
  static final List<String> REASON_CODES = List.of("UNREACHABLE", "SERVER_KEY_MISMATCH", "REJECTED",
      "INVALID_INVITATION", "INVITATION_EXPIRED", "INVITATION_USED", "ALREADY_ACCEPTED", "UNKNOWN_CONTACT",
      "INVALID_LABEL", "IDENTITY_CHANGED", "CONTACT_NOT_READY", "NOT_INITIALIZED", "ALREADY_INITIALIZED",
      "STORAGE", "TOO_LARGE", "RECIPIENT_FULL", "RATE_LIMITED", "CREATION_TOKEN_REQUIRED", "INVALID_BRIDGE",
      "SAFETY_NUMBER_MISMATCH", "CLOSED", "INVALID_SAFETY_NUMBER", "INVALID_TEXT",
      "EXPIRED", "PEER_REFUSED", "ROUTING_KEY_UNVERIFIED");
  static final int OTHER_REASON = 1099;

  /** One call's view of its connection. */
  interface Call {
    /** Whether the caller closed the connection. */
    boolean callerGone();

    /** Sends a notification to the caller. */
    void notify(String method, JsonObject params) throws IOException;

    /**
     * Sends a notification that the caller must acknowledge ({@code params} get an
     * {@code ackId}) and waits for the acknowledgement, at most {@link DaemonServer#ACK_TIMEOUT}.
     *
     * @throws IOException if the caller went away, answered {@code "ok": false}, or did not
     *     answer in time (the connection is then closed)
     */
    void hand(String method, JsonObject params) throws IOException;

    /**
     * Makes this connection subscribed, {@code listener} to be removed when it closes; false if
     * it was subscribed already.
     */
    boolean subscribe(org.ferry.sdk.FerryListener listener, Runnable onClose);

    /** Ends the subscription, if any; whether there was one. */
    boolean unsubscribe();
  }

  private final FerryClient client;
  private final AcceptanceNotices acceptances;
  private final Optional<String> proxy;

  DaemonMethods(FerryClient client, Optional<String> proxy) {
    this.client = client;
    this.acceptances = new AcceptanceNotices(client);
    this.proxy = proxy;
  }

  JsonElement call(String method, JsonObject params, Call call) throws JsonRpc.Failure {
    try {
      return switch (method) {
        case "cli" -> cli(params, call);
        case "invite" -> invite(params);
        case "accept" -> JsonViews.contact(client.acceptInvitation(string(params, "uri"), string(params, "name")));
        case "send" -> JsonViews.sent(string(params, "label"),
            client.send(string(params, "label"), string(params, "text")));
        case "sendAsync" -> {
          // Queued in the client's outbox; the outcome comes as a sendAccepted or sendFailed
          // event to subscribers, with the message id.
          String label = string(params, "label");
          client.sendAsync(label, string(params, "text"));
          JsonObject o = new JsonObject();
          o.addProperty("contact", label);
          o.addProperty("queued", true);
          yield o;
        }
        case "receive" -> receive(params, call);
        case "contacts" -> {
          JsonArray all = new JsonArray();
          client.contacts().forEach(c -> all.add(JsonViews.contact(c)));
          yield all;
        }
        case "contacts.remove" -> {
          client.removeContact(string(params, "label"));
          yield new JsonObject();
        }
        case "contacts.rename" -> JsonViews.contact(
            client.renameContact(string(params, "label"), string(params, "newLabel")));
        case "bridges.list" -> {
          JsonArray all = new JsonArray();
          client.bridges().forEach(all::add);
          yield all;
        }
        case "bridges.add" -> {
          JsonArray notes = new JsonArray();
          client.addBridge(string(params, "line")).forEach(notes::add);
          JsonObject o = new JsonObject();
          o.add("notes", notes);
          yield o;
        }
        case "status" -> status();
        case "sends" -> {
          JsonArray all = new JsonArray();
          client.sends().forEach(x -> all.add(JsonViews.send(x)));
          yield all;
        }
        case "verify" -> JsonViews.contact(client.verify(string(params, "label"), string(params, "safetyNumber")));
        case "subscribe" -> {
          Subscription events = new Subscription(call);
          if (call.subscribe(events, () -> client.removeListener(events))) {
            client.addListener(events);
            if (call.callerGone()) {
              client.removeListener(events); // closed meanwhile, its unsubscribe maybe before the add
            }
          }
          yield new JsonObject();
        }
        case "unsubscribe" -> {
          call.unsubscribe();
          yield new JsonObject();
        }
        default -> throw new JsonRpc.Failure(JsonRpc.METHOD_NOT_FOUND, "Method not found: " + shorten(method));
      };
    } catch (FerryException e) {
      String name = e.reason().name();
      int index = REASON_CODES.indexOf(name);
      JsonObject data = new JsonObject();
      data.addProperty("reason", name);
      throw new JsonRpc.Failure(index < 0 ? OTHER_REASON : 1001 + index, e.getMessage(), data);
    } catch (IllegalArgumentException e) {
      throw new JsonRpc.Failure(JsonRpc.INVALID_PARAMS, "Invalid params: " + e.getMessage());
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new JsonRpc.Failure(JsonRpc.INTERNAL_ERROR, "the daemon is stopping");
    }
  }

  private JsonElement invite(JsonObject params) throws JsonRpc.Failure {
    int days = integer(params, "validForDays", 7);
    if (days < 1 || days > 30) {
      throw new IllegalArgumentException("validForDays must be 1 to 30: " + days);
    }
    JsonObject o = new JsonObject();
    o.addProperty("uri", client.createInvitation(string(params, "name"), Duration.ofDays(days)).uri());
    acceptances.noteInvited();
    return o;
  }

  private JsonElement receive(JsonObject params, Call call) throws JsonRpc.Failure, InterruptedException {
    double seconds = number(params, "timeoutSeconds", 5);
    if (!(seconds >= 0 && seconds <= 86_400)) {
      throw new IllegalArgumentException("timeoutSeconds must be 0 to 86400: " + seconds);
    }
    int max = integer(params, "max", Integer.MAX_VALUE);
    if (max < 1) {
      throw new IllegalArgumentException("max must be at least 1: " + max);
    }
    int taken = SlicedReceive.receive(client, Duration.ofMillis((long) (seconds * 1000)), max, new MessageListener() {
      @Override
      public void onMessage(ReceivedMessage m) {
        try {
          // The SDK forgets the message only once this returns: once the caller acknowledged it.
          call.hand("message", JsonViews.message(m));
        } catch (IOException e) {
          throw new UncheckedIOException(e);
        }
      }
    }, call::callerGone);
    JsonObject o = new JsonObject();
    o.addProperty("received", taken);
    return o;
  }

  private JsonElement status() {
    JsonObject o = new JsonObject();
    try {
      client.checkConnection();
      o.add("problem", com.google.gson.JsonNull.INSTANCE);
    } catch (FerryException e) {
      o.addProperty("problem", e.getMessage());
    }
    JsonArray servers = new JsonArray();
    for (NetworkStatus s : client.networkStatus()) {
      servers.add(JsonViews.network(s));
    }
    o.add("servers", servers);
    return o;
  }

  /** A command line run by the CLI's code on this client, its output sent as notifications. */
  private JsonElement cli(JsonObject params, Call call) throws JsonRpc.Failure {
    JsonArray argv = array(params, "args");
    String[] args = new String[argv.size()];
    for (int i = 0; i < args.length; i++) {
      JsonElement a = argv.get(i);
      if (!a.isJsonPrimitive() || !a.getAsJsonPrimitive().isString()) {
        throw new JsonRpc.Failure(JsonRpc.INVALID_PARAMS, "Invalid params: args must be strings");
      }
      args[i] = a.getAsString();
    }
    Path cwd = Path.of(string(params, "cwd"));
    if (!cwd.isAbsolute()) {
      throw new JsonRpc.Failure(JsonRpc.INVALID_PARAMS, "Invalid params: cwd must be an absolute path");
    }
    InputStream stdin = InputStream.nullInputStream();
    if (params.has("stdin")) {
      try {
        stdin = new ByteArrayInputStream(Base64.getDecoder().decode(string(params, "stdin")));
      } catch (IllegalArgumentException e) {
        throw new JsonRpc.Failure(JsonRpc.INVALID_PARAMS, "Invalid params: stdin must be base64");
      }
    }
    Optional<String> wanted = proxyOf(args, params);
    if (wanted.isPresent() && !wanted.equals(proxy)) {
      // Another proxy than the daemon's would be silently ignored: refuse instead. (A command
      // naming none gets the daemon's.)
      String data = DaemonCli.dataArgument(args);
      JsonObject line = new JsonObject();
      line.addProperty("stream", "err");
      line.addProperty("text", "ferry client: the daemon for " + data + (proxy.isEmpty()
          ? " runs without a proxy; stop it, or run the command without --proxy and FERRY_PROXY"
          : " runs with proxy " + withoutUserInfo(proxy.get()) + "; stop it, or give the same --proxy") + "\n");
      try {
        call.hand("output", line);
      } catch (IOException e) {
        // The caller is gone; the exit code is all that is left.
      }
      JsonObject o = new JsonObject();
      o.addProperty("exit", 2);
      return o;
    }
    PrintWriter out = new PrintWriter(new NotifyingWriter(call, "out"), true);
    PrintWriter err = new PrintWriter(new NotifyingWriter(call, "err"), true);
    BooleanSupplier gone = call::callerGone;
    int exit;
    try {
      exit = ClientMain.runForDaemon(new ClientMain.Remote(client, cwd, gone, acceptances), args, stdin, out, err);
    } finally {
      acceptances.noteInvited();
    }
    out.flush();
    err.flush();
    JsonObject o = new JsonObject();
    o.addProperty("exit", exit);
    return o;
  }

  /**
   * The proxy a command line names: its {@code --proxy}, else the caller's {@code FERRY_PROXY}
   * (param {@code proxyEnv}); a blank one is none.
   */
  static Optional<String> proxyOf(String[] args, JsonObject params) throws JsonRpc.Failure {
    String named = null;
    for (int i = 0; i < args.length; i++) {
      if ("--".equals(args[i])) {
        break;
      }
      if ("--proxy".equals(args[i]) && i + 1 < args.length) {
        named = args[i + 1];
      } else if (args[i].startsWith("--proxy=")) {
        named = args[i].substring("--proxy=".length());
      }
    }
    if (named == null && params.has("proxyEnv") && !params.get("proxyEnv").isJsonNull()) {
      named = string(params, "proxyEnv");
    }
    return Optional.ofNullable(named).filter(p -> !p.isBlank());
  }

  /** {@code uri} without a user name or password, for messages. */
  private static String withoutUserInfo(String uri) {
    return uri.replaceFirst("//[^/@]*@", "//");
  }

  /**
   * Text written to it goes to the caller, one "output" notification per flush, each
   * acknowledged by the caller once written out: a flush fails if it was not (so that
   * {@code receive} keeps a message its caller did not get).
   */
  private static final class NotifyingWriter extends Writer {
    private final Call call;
    private final String stream;
    private final StringBuilder pending = new StringBuilder();

    NotifyingWriter(Call call, String stream) {
      this.call = call;
      this.stream = stream;
    }

    @Override
    public void write(char[] cbuf, int off, int len) {
      pending.append(cbuf, off, len);
    }

    @Override
    public void flush() throws IOException {
      if (pending.length() == 0) {
        return;
      }
      JsonObject params = new JsonObject();
      params.addProperty("stream", stream);
      params.addProperty("text", pending.toString());
      pending.setLength(0);
      call.hand("output", params);
    }

    @Override
    public void close() throws IOException {
      flush();
    }
  }

  private static String shorten(String s) {
    return s.length() <= 64 ? s : s.substring(0, 64) + "...";
  }

  private static JsonElement param(JsonObject params, String name) throws JsonRpc.Failure {
    JsonElement e = params.get(name);
    if (e == null || e.isJsonNull()) {
      throw new JsonRpc.Failure(JsonRpc.INVALID_PARAMS, "Invalid params: missing '" + name + "'");
    }
    return e;
  }

  static String string(JsonObject params, String name) throws JsonRpc.Failure {
    JsonElement e = param(params, name);
    if (!e.isJsonPrimitive() || !e.getAsJsonPrimitive().isString()) {
      throw new JsonRpc.Failure(JsonRpc.INVALID_PARAMS, "Invalid params: '" + name + "' must be a string");
    }
    return e.getAsString();
  }

  static JsonArray array(JsonObject params, String name) throws JsonRpc.Failure {
    JsonElement e = param(params, name);
    if (!e.isJsonArray()) {
      throw new JsonRpc.Failure(JsonRpc.INVALID_PARAMS, "Invalid params: '" + name + "' must be an array");
    }
    return e.getAsJsonArray();
  }

  static double number(JsonObject params, String name, double otherwise) throws JsonRpc.Failure {
    if (!params.has(name)) {
      return otherwise;
    }
    JsonElement e = param(params, name);
    if (!e.isJsonPrimitive() || !e.getAsJsonPrimitive().isNumber()) {
      throw new JsonRpc.Failure(JsonRpc.INVALID_PARAMS, "Invalid params: '" + name + "' must be a number");
    }
    return e.getAsDouble();
  }

  static int integer(JsonObject params, String name, int otherwise) throws JsonRpc.Failure {
    double d = number(params, name, otherwise);
    if (d != Math.rint(d) || Math.abs(d) > Integer.MAX_VALUE) {
      throw new JsonRpc.Failure(JsonRpc.INVALID_PARAMS, "Invalid params: '" + name + "' must be an integer");
    }
    return (int) d;
  }
}
