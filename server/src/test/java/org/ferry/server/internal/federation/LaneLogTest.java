package org.ferry.server.internal.federation;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class LaneLogTest {
  @Test
  void aFailedCallsDescriptionIsLoggedWithoutAnyAddressOnOneLine() {
    String line = Lane.withoutAddresses("deadline exceeded after 29.9s.\n[remote_addr=/198.51.100.7:7443, "
        + "local=[2001:db8::1]:40000]");
    assertFalse(line.contains("198.51.100.7"), line);
    assertFalse(line.contains("2001:db8"), line);
    assertFalse(line.contains("\n"), line);
    assertTrue(line.startsWith("deadline exceeded after 29.9s."), line);
    assertEquals(203, Lane.withoutAddresses("x".repeat(500)).length());
  }
}
