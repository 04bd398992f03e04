package org.ferry.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.time.Duration;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

class ServerMainOptionsTest {
  @Test
  void durationsAreReadAsPeopleWriteThem() {
    ServerMain.DurationConverter c = new ServerMain.DurationConverter();
    assertEquals(Duration.ofDays(21), c.convert("21d"));
    assertEquals(Duration.ofHours(36), c.convert("36h"));
    assertEquals(Duration.ofMinutes(90), c.convert("90m"));
    assertEquals(Duration.ofSeconds(45), c.convert("45s"));
    for (String bad : new String[] {"", "21", "d", "-1d", "0d", "1w", "1.5d"}) {
      assertThrows(CommandLine.TypeConversionException.class, () -> c.convert(bad), bad);
    }
  }

  @Test
  void sizesTakeBinarySuffixesAndRejectNonsense() {
    ServerMain.SizeConverter c = new ServerMain.SizeConverter();
    assertEquals(1000L, c.convert("1000"));
    assertEquals(64L << 20, c.convert("64M"));
    assertEquals(4L << 30, c.convert("4G"));
    assertEquals(4L << 30, c.convert("4GiB"));
    assertEquals(1L << 40, c.convert("1t"));
    for (String bad : new String[] {"", "0", "-1G", "1.5G", "12X", "9999999999T"}) {
      assertThrows(CommandLine.TypeConversionException.class, () -> c.convert(bad), bad);
    }
  }
}
