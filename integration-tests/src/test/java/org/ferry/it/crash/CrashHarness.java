package org.ferry.it.crash;

import io.grpc.ManagedChannel;
import io.grpc.StatusRuntimeException;
import java.io.BufferedWriter;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.ferry.it.load.LoadClient;
import org.ferry.it.load.Receiver;
import org.ferry.it.load.ServerProcess;
import org.ferry.proto.v1.MailboxesGrpc;

/**
 * Kills a real server with SIGKILL at random moments under concurrent load, restarts it, and
 * checks against its own ledger that every send the server acknowledged is delivered, in time,
 * and not again once its ack was confirmed.
 *
 * <p>Senders record a send in the ledger only once the server acknowledged it; receivers record
 * a delivery before they acknowledge it, and the server's confirmations of their acks. After the
 * last cycle the senders stop and the harness waits, at most {@link #LIVE_WAIT}, for every
 * acknowledged envelope to reach the receivers that followed the server through its crashes.
 * Then it restarts the server once more, connects fresh receivers and waits again. It prints
 * {@code crash-test: cycles=N acked=A delivered=D lost=L stranded=S duplicates=U redelivered=R}
 * (see {@link CrashLedger}): L never delivered, S delivered only to the fresh receivers, U
 * delivered again after the server confirmed the ack, R delivered again before that (allowed).
 *
 * <pre>java -cp ... org.ferry.it.crash.CrashHarness SERVER_JAR WORK_DIR CYCLES [--unsafe-ack-before-write]</pre>
 */
public final class CrashHarness {
  private static final HexFormat HEX = HexFormat.of();
  private static final int SENDERS = 6;
  private static final int MAILBOXES = 6;
  private static final int RECEIVERS = 2;
  private static final int BODY = 1024;
  /** Sends each server must acknowledge before the harness may kill it. */
  static final int MIN_ACKS_PER_CYCLE = 20;
  /** How long live receivers may take to get everything once the senders stopped. */
  static final Duration LIVE_WAIT = Duration.ofSeconds(20);
  /** How long fresh receivers may take after the final restart. */
  static final Duration FINAL_WAIT = Duration.ofSeconds(30);

  private final ServerProcess.Command command;
  private final int cycles;
  private final Random random;
  private final CrashLedger account = new CrashLedger();
  private final BufferedWriter ledger;
  private volatile ServerProcess server;
  private volatile ManagedChannel channel;

  public CrashHarness(ServerProcess.Command command, int cycles, long seed) throws IOException {
    this.command = command;
    this.cycles = cycles;
    this.random = new Random(seed);
    Path work = command.data().getParent();
    Files.createDirectories(work);
    this.ledger = Files.newBufferedWriter(work.resolve("acked.ledger"), StandardCharsets.US_ASCII);
  }

  public static void main(String[] args) throws Exception {
    if (args.length < 3) {
      System.err.println("usage: CrashHarness SERVER_JAR WORK_DIR CYCLES [--unsafe-ack-before-write]");
      System.exit(2);
    }
    Path work = Path.of(args[1]);
    List<String> extra = args.length > 3 && args[3].equals("--unsafe-ack-before-write")
        ? List.of("--unsafe-ack-before-write") : List.of();
    ServerProcess.Command command = ServerProcess.Command.fromJar(
        Path.of(args[0]), work.resolve("server"), List.of("-Xmx512m"), extra);
    CrashLedger.Result r = new CrashHarness(command, Integer.parseInt(args[2]), System.nanoTime()).run();
    System.out.println(r.line());
    System.exit(r.passed() ? 0 : 1);
  }

  public CrashLedger.Result run() throws Exception {
    server = ServerProcess.start(command, 0);
    int port = server.address().port();
    channel = LoadClient.channel(server.address());
    List<LoadClient.Mailbox> mailboxes = new ArrayList<>();
    for (int i = 0; i < MAILBOXES; i++) {
      mailboxes.add(LoadClient.createMailbox(channel));
    }
    CountDownLatch stopSending = new CountDownLatch(1);
    List<Thread> senders = new ArrayList<>();
    for (int i = 0; i < SENDERS; i++) {
      long senderSeed = random.nextLong();
      Thread t = new Thread(() -> send(mailboxes, stopSending, new Random(senderSeed)), "sender-" + i);
      t.setDaemon(true);
      t.start();
      senders.add(t);
    }
    List<Receiver> receivers = account.receivers(() -> server.address(), mailboxes, RECEIVERS);
    for (int cycle = 0; cycle < cycles; cycle++) {
      // Run under load: once this server acknowledged some sends (however slow the machine is),
      // a random while more, then kill without warning.
      account.awaitMoreAcks(MIN_ACKS_PER_CYCLE);
      stopSending.await(random.nextInt(1300), TimeUnit.MILLISECONDS);
      server.kill();
      server = ServerProcess.start(command, port);
      ManagedChannel old = channel;
      channel = LoadClient.channel(server.address());
      old.shutdownNow();
    }
    stopSending.countDown();
    for (Thread t : senders) {
      t.join(30_000);
    }
    account.settle(receivers, LIVE_WAIT, () -> {
      server.close();
      server = ServerProcess.start(command, port);
      return account.receivers(() -> server.address(), mailboxes, RECEIVERS);
    }, FINAL_WAIT);
    channel.shutdownNow();
    server.close();
    ledger.close();
    return account.result(cycles);
  }

  private void send(List<LoadClient.Mailbox> mailboxes, CountDownLatch stop, Random rnd) {
    byte[] body = new byte[BODY];
    while (stop.getCount() > 0) {
      int box = rnd.nextInt(mailboxes.size());
      byte[] envelopeId = new byte[16];
      rnd.nextBytes(envelopeId);
      rnd.nextBytes(body);
      try {
        MailboxesGrpc.newBlockingStub(channel)
            .withDeadlineAfter(10, TimeUnit.SECONDS)
            .send(mailboxes.get(box).send(envelopeId, body));
        acked(HEX.formatHex(envelopeId));
      } catch (StatusRuntimeException e) {
        // The server is down or restarting: this send's fate is unknown, so it is not in the
        // ledger. Pause briefly instead of spinning.
        try {
          stop.await(20, TimeUnit.MILLISECONDS);
        } catch (InterruptedException ie) {
          Thread.currentThread().interrupt();
          return;
        }
      }
    }
  }

  private void acked(String id) {
    account.acked(id);
    synchronized (ledger) {
      try {
        ledger.write(id);
        ledger.newLine();
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }
  }
}
