package org.ferry.it;

import java.util.ArrayList;
import java.util.List;

/** What a test opened (servers, relays, censors, clients, processes), closed in reverse order. */
public final class Closer implements AutoCloseable {
  private final List<AutoCloseable> open = new ArrayList<>();

  public <T extends AutoCloseable> T add(T resource) {
    open.add(resource);
    return resource;
  }

  /** Closes everything, even if some fail; then throws the first failure, the others suppressed. */
  @Override
  public void close() {
    RuntimeException first = null;
    for (int i = open.size() - 1; i >= 0; i--) {
      try {
        open.get(i).close();
      } catch (Exception e) {
        if (e instanceof InterruptedException) {
          Thread.currentThread().interrupt();
        }
        if (first == null) {
          first = new IllegalStateException("closing " + open.get(i) + " failed", e);
        } else {
          first.addSuppressed(e);
        }
      }
    }
    open.clear();
    if (first != null) {
      throw first;
    }
  }
}
