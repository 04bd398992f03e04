package org.ferry.it.load;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import org.junit.jupiter.api.Test;

/** DeliveryBench reads Prosody's figures from run.sh's output, whatever else that prints. */
class ProsodyOutputTest {
  @Test
  void readsBothLinesAmongProsodysOtherOutput() {
    String out = """
        certmanager         error	Error indexing certificate directory /tmp/prosody-bench.x/certs: cannot open
        (node:15843) Warning: Setting the NODE_TLS_REJECT_UNAUTHORIZED environment variable to '0' ...
        prosody online: 10000 msgs in 1.60 s = 6250 msg/s
        prosody offline: store 10000 in 4.00 s = 2500 msg/s; drain 4257 msg/s; end-to-end 1533 msg/s
        """;

    DeliveryBench.Prosody p = DeliveryBench.Prosody.parse(out, 10000);

    assertEquals(6250, p.online(), 0.5);
    assertEquals(2500, p.store(), 0.5);
    assertEquals(4257, p.drain(), 0.5);
    assertEquals(1533, p.endToEnd(), 0.5);
  }

  @Test
  void refusesOutputWithoutTheOfflineLine() {
    String out = "prosody online: 10000 msgs in 1.60 s = 6250 msg/s\nprosody did not start:\n";

    assertThrows(IllegalStateException.class, () -> DeliveryBench.Prosody.parse(out, 10000));
  }

  @Test
  void refusesARunOfAnotherSize() {
    String out = """
        prosody online: 20000 msgs in 3.20 s = 6250 msg/s
        prosody offline: store 20000 in 8.00 s = 2500 msg/s; drain 4257 msg/s; end-to-end 1533 msg/s
        """;

    assertThrows(IllegalStateException.class, () -> DeliveryBench.Prosody.parse(out, 10000));
  }
}
