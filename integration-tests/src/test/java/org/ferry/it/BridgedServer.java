package org.ferry.it;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.util.EnumSet;
import java.util.Optional;
import org.ferry.it.censor.Censor;
import org.ferry.it.censor.Censor.Rule;
import org.ferry.proto.BridgeLine;
import org.ferry.proto.ServerAddress;
import org.ferry.relay.Carrier;
import org.ferry.relay.Relay;

/**
 * A server whose own port is blocked by a {@link Censor}, and a relay in front of it with
 * WebSocket and polling lines: every call of a client that knows the server by {@link
 * #censoredAddress} goes over a bridge line.
 */
final class BridgedServer implements AutoCloseable {
  final RunningServer server;
  final Relay relay;
  final Censor direct;
  private final Closer closer = new Closer();

  BridgedServer(Path dir) throws IOException {
    server = closer.add(new RunningServer(dir.resolve("server")));
    relay = closer.add(Relay.builder()
        .dataDirectory(dir.resolve("relay"))
        .listen(new InetSocketAddress("127.0.0.1", 0))
        .upstream(new InetSocketAddress("127.0.0.1", server.address().port()))
        .carriers(EnumSet.of(Carrier.WS, Carrier.POLL))
        .start());
    direct = closer.add(Censor.start(new InetSocketAddress("127.0.0.1", server.address().port())).block(Rule.BLOCK_PORT));
  }

  /** The server as censored users know it: its address behind the censor. */
  ServerAddress censoredAddress() {
    return new ServerAddress("127.0.0.1", direct.port(), server.address().fingerprint());
  }

  int webPort() {
    return relay.webAddress().getPort();
  }

  String secretPath() {
    return relay.bridgeLines().get(0).path();
  }

  /** The relay's line of {@code kind} (TLS if {@code tls}, with the relay's pin), pointed at {@code port}. */
  BridgeLine line(BridgeLine.Kind kind, boolean tls, int port) {
    BridgeLine printed = relay.bridgeLines().stream().filter(l -> l.kind() == kind).findFirst().orElseThrow();
    return new BridgeLine(kind, "127.0.0.1", port, tls, printed.path(), tls ? printed.pin() : Optional.empty(),
        printed.params());
  }

  @Override
  public void close() {
    closer.close();
  }
}
