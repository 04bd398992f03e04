package org.ferry.it;

import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Clock;
import org.ferry.sdk.FerryClient;

/** SDK clients for tests: each with its own data directory and a random storage key. */
final class TestClients {
  private TestClients() {}

  static FerryClient open(Path dir, String name, Clock clock) {
    byte[] key = new byte[32];
    new SecureRandom().nextBytes(key);
    return FerryClient.builder().dataDirectory(dir.resolve(name)).storageKey(key).clock(clock).build();
  }

  static FerryClient open(Path dir, String name) {
    return open(dir, name, Clock.systemUTC());
  }
}
