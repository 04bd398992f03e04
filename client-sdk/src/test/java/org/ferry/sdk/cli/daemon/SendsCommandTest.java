package org.ferry.sdk.cli.daemon;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import org.ferry.proto.ErrorReasons;
import org.ferry.proto.ServerAddress;
import org.ferry.proto.v1.ForwardOutcome;
import org.ferry.sdk.FakeFederation;
import org.ferry.sdk.FerryClient;
import org.ferry.sdk.SendStatus;
import org.ferry.sdk.cli.ClientMain;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code ferry client sends} lists pending and failed sends, in text and JSON, as the daemon runs
 * it for a caller (the path every command takes while a daemon serves the data directory), and
 * as the daemon's own {@code sends} method.
 */
class SendsCommandTest {
  @TempDir Path dir;

  private FakeFederation fed;
  private FakeFederation.FakeServer a;
  private FerryClient alice;
  private FerryClient bob;

  @BeforeEach
  void setUp() throws Exception {
    fed = new FakeFederation();
    a = fed.server("a.example");
    FakeFederation.FakeServer b = fed.server("b.example");
    Set<ServerAddress> opened = ConcurrentHashMap.newKeySet();
    alice = fed.client(dir.resolve("alice"), opened);
    alice.initialize(a.address);
    bob = fed.client(dir.resolve("bob"), opened);
    bob.initialize(b.address);
    FakeFederation.connect(bob, "alice", alice, "bob");
    // Alice's contact card went through A: its outcome comes with her next receive.
    await().atMost(Duration.ofSeconds(20)).until(() -> {
      alice.receive(Duration.ofMillis(100), m -> { });
      return alice.sends().isEmpty();
    });
  }

  @AfterEach
  void tearDown() {
    alice.close();
    bob.close();
    fed.close();
  }

  /** A daemon connection that collects the command's output. */
  private static final class Caller implements DaemonMethods.Call {
    final StringBuilder out = new StringBuilder();

    @Override
    public boolean callerGone() {
      return false;
    }

    @Override
    public void notify(String method, JsonObject params) {}

    @Override
    public void hand(String method, JsonObject params) {
      if (params.get("stream").getAsString().equals("out")) {
        out.append(params.get("text").getAsString());
      }
    }

    @Override
    public boolean subscribe(org.ferry.sdk.FerryListener listener, Runnable onClose) {
      return false;
    }

    @Override
    public boolean unsubscribe() {
      return false;
    }
  }

  private List<String> run(DaemonMethods daemon, String... args) throws Exception {
    Caller caller = new Caller();
    JsonObject params = new JsonObject();
    JsonArray argv = new JsonArray();
    for (String arg : args) {
      argv.add(arg);
    }
    params.add("args", argv);
    params.addProperty("cwd", dir.toAbsolutePath().toString());
    JsonObject result = daemon.call("cli", params, caller).getAsJsonObject();
    assertEquals(0, result.get("exit").getAsInt(), caller.out.toString());
    return caller.out.toString().lines().toList();
  }

  @Test
  void sendsListsForwardingAndFailedSendsInTextAndJson() throws Exception {
    a.holdOutcomes = true;
    String held = alice.sendAsync("bob", "held").get(20, TimeUnit.SECONDS);
    a.holdOutcomes = false;
    a.outcomeOverride = r -> ForwardOutcome.newBuilder()
        .setItemId(r.getItemId()).setDestination(r.getDestination())
        .setResult(ForwardOutcome.Result.FAILED).setCode(4).setReason(ErrorReasons.EXPIRED).setHop("home").build();
    String expired = alice.sendAsync("bob", "expired").get(20, TimeUnit.SECONDS);
    // The outcome comes with the next receive.
    await().atMost(Duration.ofSeconds(20)).until(() -> {
      alice.receive(Duration.ofMillis(100), m -> { });
      return alice.sends().stream().anyMatch(s -> s.state() == SendStatus.State.FAILED);
    });

    DaemonMethods daemon = new DaemonMethods(alice, Optional.empty());
    List<String> text = run(daemon, "sends");
    assertEquals(2, text.size(), text.toString());
    assertTrue(text.get(0).startsWith("forwarding\tbob\t" + held + "\tb.example:7443\tqueued "), text.get(0));
    assertTrue(text.get(0).contains("\theld by home server since "), text.get(0));
    assertTrue(text.get(1).startsWith("failed\tbob\t" + expired + "\tb.example:7443\t"), text.get(1));
    assertTrue(text.get(1).contains("\tEXPIRED: not delivered"), text.get(1));

    List<JsonObject> json = new ArrayList<>();
    run(daemon, "sends", "--json").forEach(l -> json.add(JsonParser.parseString(l).getAsJsonObject()));
    assertEquals(2, json.size());
    assertEquals("forwarding", json.get(0).get("state").getAsString());
    assertEquals(held, json.get(0).get("messageId").getAsString());
    assertTrue(json.get(0).get("reason").isJsonNull());
    assertEquals("failed", json.get(1).get("state").getAsString());
    assertEquals("EXPIRED", json.get(1).get("reason").getAsString());
    assertEquals("bob", json.get(1).get("contact").getAsString());

    // The daemon's JSON-RPC method gives the same objects.
    JsonArray viaMethod = daemon.call("sends", new JsonObject(), new Caller()).getAsJsonArray();
    assertEquals(json.get(0), viaMethod.get(0));
    assertEquals(json.get(1), viaMethod.get(1));
  }

  @Test
  void sendsListsMessagesStillInTheOutbox() throws Exception {
    a.close(); // The home server is gone: the message stays queued.
    alice.sendAsync("bob", "waiting");
    DaemonMethods daemon = new DaemonMethods(alice, Optional.empty());
    List<String> text = run(daemon, "sends");
    assertEquals(1, text.size(), text.toString());
    assertTrue(text.get(0).startsWith("queued\tbob\t"), text.get(0));
    assertEquals(1, alice.pendingSends());
  }
}
