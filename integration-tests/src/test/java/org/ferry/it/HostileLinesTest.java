package org.ferry.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.ferry.it.censor.BlockPage;
import org.ferry.it.censor.Censor;
import org.ferry.proto.BridgeLine;
import org.ferry.relay.internal.tls.TlsIdentity;
import org.ferry.sdk.FerryClient;
import org.ferry.sdk.FerryException;
import org.ferry.sdk.MessageListener;
import org.ferry.sdk.NetworkStatus;
import org.ferry.sdk.ReceivedMessage;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Lines that connect but do not lead to the server: block pages and captive portals answering
 * in the relay's place, and middleboxes that let a connection start and then blackhole it. The
 * server's own port is blocked in each case, so every call goes over the bridge lines.
 */
class HostileLinesTest {
  @TempDir Path dir;

  private final Closer closer = new Closer();
  private final Map<String, byte[]> storageKeys = new java.util.HashMap<>();
  private BridgedServer net;

  @BeforeEach
  void start() throws Exception {
    net = closer.add(new BridgedServer(dir));
  }

  @AfterEach
  void closeAll() {
    closer.close();
  }

  /** Opens (again, with the same storage key) the client named {@code name}. */
  private FerryClient open(String name) {
    byte[] key = storageKeys.computeIfAbsent(name, n -> {
      byte[] k = new byte[32];
      new SecureRandom().nextBytes(k);
      return k;
    });
    return closer.add(FerryClient.builder().dataDirectory(dir.resolve(name)).storageKey(key).build());
  }

  private FerryClient user(String name, List<BridgeLine> lines) {
    FerryClient c = open(name);
    c.initialize(net.censoredAddress(), "",
        lines.stream().map(BridgeLine::toString).toList());
    return c;
  }

  private static NetworkStatus.Line health(FerryClient c, BridgeLine line) {
    return c.networkStatus().get(0).lines().stream().filter(l -> l.line().equals(line.toString()))
        .findFirst().orElseThrow(() -> new AssertionError("no line " + line + " in " + c.networkStatus()));
  }

  private static Optional<String> inUse(FerryClient c) {
    return c.networkStatus().get(0).inUse();
  }

  private static final class Inbox implements MessageListener {
    final List<String> texts = Collections.synchronizedList(new ArrayList<>());

    @Override
    public void onMessage(ReceivedMessage m) {
      texts.add(m.text());
    }
  }

  @ParameterizedTest(name = "block page answering {0}")
  @ValueSource(ints = {200, 302, 403})
  void blockPagesBeforeAWorkingLineAreFailuresOfTheirOwn(int status) throws Exception {
    TlsIdentity portalKey = TlsIdentity.loadOrCreate(dir.resolve("portal"), "portal", "localhost", new SecureRandom());
    BlockPage plain = closer.add(BlockPage.http(status));
    BlockPage tls = closer.add(BlockPage.https(status, portalKey.privateKey(), portalKey.certificate()));
    List<BridgeLine> blocked = List.of(
        net.line(BridgeLine.Kind.WS, false, plain.port()),
        net.line(BridgeLine.Kind.POLL, false, plain.port()),
        net.line(BridgeLine.Kind.POLL, true, tls.port()));
    BridgeLine working = net.line(BridgeLine.Kind.WS, false, net.webPort());
    List<BridgeLine> lines = new ArrayList<>(blocked);
    lines.add(working);

    FerryClient alice = user("alice", lines);
    alice.createInvitation("bob");
    assertEquals(Optional.of(working.toString()), inUse(alice), "connected over the working line");
    assertTrue(plain.requests() > 0, "the block pages were asked");
    for (BridgeLine b : blocked) {
      NetworkStatus.Line h = health(alice, b);
      assertEquals(0, h.successes(), "a block page is never a success: " + h);
      assertTrue(h.failures() >= 1 && h.backingOffUntil().isPresent(), "recorded as a failure: " + h);
    }

    // A later session (a new process, as the CLI is) starts from what was learnt.
    alice.close();
    FerryClient again = open("alice");
    again.createInvitation("carol");
    assertEquals(Optional.of(working.toString()), inUse(again));
    for (BridgeLine b : blocked) {
      assertEquals(0, health(again, b).successes(), "still not a success: " + b);
    }
  }

  @Test
  void aLineThatStallsIsGivenUpAndTheCallRetriedOnTheNext() {
    Censor middlebox = closer.add(Censor.start(net.relay.webAddress()));
    BridgeLine stalling = net.line(BridgeLine.Kind.WS, false, middlebox.port());
    BridgeLine other = net.line(BridgeLine.Kind.POLL, false, net.webPort());
    FerryClient alice = user("alice", List.of(other));
    FerryClient bob = user("bob", List.of(stalling, other));
    bob.acceptInvitation(alice.createInvitation("bob").uri(), "alice");
    alice.receive(Duration.ofMillis(300), new Inbox());
    bob.send("alice", "small");
    assertEquals(Optional.of(stalling.toString()), inUse(bob), "bob starts on the first line");

    // From here on, the middlebox forwards 16 KiB more, then drops everything silently.
    middlebox.stallAfter(16 * 1024);
    String large = "x".repeat(40_000);
    long start = System.nanoTime();
    bob.send("alice", large);
    Duration took = Duration.ofNanos(System.nanoTime() - start);
    assertTrue(middlebox.stalls() > 0, "the middlebox stalled bob's connection");
    assertTrue(took.compareTo(Duration.ofSeconds(20)) < 0, "within the call's deadline: " + took);
    assertEquals(Optional.of(other.toString()), inUse(bob), "bob moved to the other line");
    NetworkStatus.Line h = health(bob, stalling);
    assertTrue(h.failures() >= 1 && h.backingOffUntil().isPresent(), "the stalled line failed: " + h);

    Inbox inbox = new Inbox();
    alice.receive(Duration.ofMillis(500), inbox);
    assertEquals(List.of("small", large), inbox.texts);
  }
  @Test
  void aReceiveWhoseLineStallsMovesToTheNextLineAndGetsEverything() {
    Censor middlebox = closer.add(Censor.start(net.relay.webAddress()));
    BridgeLine stalling = net.line(BridgeLine.Kind.WS, false, middlebox.port());
    BridgeLine other = net.line(BridgeLine.Kind.POLL, false, net.webPort());
    FerryClient carol = user("carol", List.of(stalling, other));
    FerryClient dave = user("dave", List.of(other));
    dave.acceptInvitation(carol.createInvitation("dave").uri(), "carol");
    carol.receive(Duration.ofMillis(300), new Inbox());
    assertEquals(Optional.of(stalling.toString()), inUse(carol), "carol starts on the first line");
    List<String> sent = new ArrayList<>();
    for (int i = 0; i < 3; i++) {
      String text = Integer.toString(i).repeat(60_000);
      dave.send("carol", text);
      sent.add(text);
    }

    // From here on, the middlebox forwards 16 KiB more, then drops everything silently.
    middlebox.stallAfter(16 * 1024);
    Inbox inbox = new Inbox();
    long start = System.nanoTime();
    carol.receive(Duration.ofMillis(500), inbox);
    Duration took = Duration.ofNanos(System.nanoTime() - start);
    assertEquals(sent.size(), inbox.texts.size(), "every message arrived");
    assertEquals(sent, inbox.texts);
    assertTrue(middlebox.stalls() > 0, "the middlebox stalled carol's connection");
    assertTrue(took.compareTo(Duration.ofSeconds(20)) < 0, "within the call timeout: " + took);
    assertEquals(Optional.of(other.toString()), inUse(carol), "carol moved to the other line");
    NetworkStatus.Line h = health(carol, stalling);
    assertTrue(h.failures() >= 1 && h.backingOffUntil().isPresent(), "the stalled line failed: " + h);
  }
  @Test
  void aReceiveWhoseOnlyLineStallsFailsNamingTheLine() {
    Censor middlebox = closer.add(Censor.start(net.relay.webAddress()));
    BridgeLine stalling = net.line(BridgeLine.Kind.WS, false, middlebox.port());
    FerryClient carol = closer.add(FerryClient.builder().dataDirectory(dir.resolve("carol"))
        .storageKey(new byte[32]).callTimeout(Duration.ofSeconds(8)).build());
    carol.initialize(net.censoredAddress(), "", List.of(stalling.toString()));
    // Dave knows the same line only, so that his contact card teaches carol no other.
    FerryClient dave = user("dave", List.of(stalling));
    dave.acceptInvitation(carol.createInvitation("dave").uri(), "carol");
    carol.receive(Duration.ofMillis(300), new Inbox());
    for (int i = 0; i < 3; i++) {
      dave.send("carol", Integer.toString(i).repeat(60_000));
    }

    middlebox.stallAfter(16 * 1024);
    FerryException e = assertThrows(FerryException.class, () -> carol.receive(Duration.ofMillis(500), new Inbox()));
    assertEquals(FerryException.Reason.UNREACHABLE, e.reason(), e.getMessage());
    assertTrue(e.getMessage().contains(stalling.shortForm()), "names the line: " + e.getMessage());
    assertTrue(health(carol, stalling).failures() >= 1, "the stalled line failed");
  }
}
