package org.ferry.server.internal.mailbox;

import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArraySet;

/** Wakes the receive streams subscribed to a mailbox when something new is durable in it. */
public final class DeliveryNotifier {
  private final Map<MailboxId, Set<Runnable>> listeners = new ConcurrentHashMap<>();

  /** Registers {@code onNew}; the returned handle unregisters it. */
  public Registration register(MailboxId mailbox, Runnable onNew) {
    listeners.computeIfAbsent(mailbox, k -> new CopyOnWriteArraySet<>()).add(onNew);
    return () ->
        listeners.computeIfPresent(
            mailbox,
            (k, set) -> {
              set.remove(onNew);
              return set.isEmpty() ? null : set;
            });
  }

  public void notifyNew(MailboxId mailbox) {
    Set<Runnable> set = listeners.get(mailbox);
    if (set != null) {
      set.forEach(Runnable::run);
    }
  }

  /** Handle for one registration. */
  @FunctionalInterface
  public interface Registration extends AutoCloseable {
    @Override
    void close();
  }
}
