package org.ferry.sdk.internal.messaging;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.List;
import org.ferry.sdk.FerryException;
import org.ferry.sdk.internal.store.LocalStore;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SendLogTest {
  @TempDir Path dir;

  @Test
  void onlyTheLatestFailedSendsAreKept() {
    try (LocalStore store = LocalStore.open(dir, new byte[32])) {
      int n = SendLog.MAX_FAILED + 5;
      for (int i = 0; i < n; i++) {
        try (LocalStore.Txn txn = store.begin()) {
          SendLog.failed(txn, new SendLog.Failed(String.format("%032x", i), "c", "h:1#x", i, 1000 + i,
              FerryException.Reason.EXPIRED, "ran out"));
          txn.commit();
        }
      }
      List<SendLog.Failed> kept = SendLog.failures(store);
      assertEquals(SendLog.MAX_FAILED, kept.size());
      assertEquals(String.format("%032x", 5), kept.get(0).messageId());
      assertEquals(String.format("%032x", n - 1), kept.get(kept.size() - 1).messageId());
      assertTrue(kept.stream().allMatch(f -> f.reason() == FerryException.Reason.EXPIRED));
    }
  }
}
