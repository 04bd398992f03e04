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

  /** Storage key derived from the name, so that a test can close a client and open it (or its store) again. */
  static byte[] namedKey(String name) {
    byte[] key = new byte[32];
    java.util.Arrays.fill(key, (byte) name.hashCode());
    return key;
  }

  /** A client whose storage key is {@link #namedKey}. */
  static FerryClient openWithNamedKey(Path dir, String name) {
    return FerryClient.builder().dataDirectory(dir.resolve(name)).storageKey(namedKey(name)).build();
  }

  static FerryClient open(Path dir, String name) {
    return open(dir, name, Clock.systemUTC());
  }
}
