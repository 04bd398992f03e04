package org.ferry.proto;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class ManagedTransportTest {
  @Test
  void socksArgumentsAreJoinedWithSemicolonsAndThePasswordIsOneNul() {
    Map<String, String> args = new LinkedHashMap<>();
    args.put("cert", "AB+/cd");
    args.put("iat-mode", "0");
    assertEquals(List.of("cert=AB+/cd;iat-mode=0", "\0"), ManagedTransport.socksArguments(args));
  }

  @Test
  void separatorsInsideAValueAreEscapedSoTheyCannotAddArguments() {
    Map<String, String> args = new LinkedHashMap<>();
    args.put("cert", "x;iat-mode=2\\");
    args.put("iat-mode", "0");
    assertEquals("cert=x\\;iat-mode\\=2\\\\;iat-mode=0", ManagedTransport.socksArguments(args).get(0));
  }

  @Test
  void argumentsLongerThan255BytesContinueInThePassword() {
    List<String> up = ManagedTransport.socksArguments(Map.of("k", "v".repeat(300)));
    assertEquals(255, up.get(0).length());
    assertEquals("k=" + "v".repeat(300), up.get(0) + up.get(1));
    assertThrows(IllegalArgumentException.class, () -> ManagedTransport.socksArguments(Map.of("k", "v".repeat(600))));
    assertThrows(IllegalArgumentException.class, () -> ManagedTransport.socksArguments(Map.of("k", "a\0b")));
  }
}
