package org.ferry.relay;

import java.util.EnumSet;
import java.util.Locale;
import java.util.Set;

/** The carriers a relay (or a server, for itself) can accept. */
public enum Carrier {
  /** WebSocket over HTTPS, binary frames, on the secret path. */
  WS,
  /** HTTP polling: one POST at a time on the secret path. */
  POLL,
  /** obfs4 through obfs4proxy, on its own port. */
  OBFS4;

  /** Parses {@code ws,poll,obfs4} (any subset, any order); throws saying what is unknown. */
  public static Set<Carrier> parseList(String text) {
    Set<Carrier> out = EnumSet.noneOf(Carrier.class);
    for (String word : text.split(",")) {
      String w = word.strip();
      if (w.isEmpty()) {
        continue;
      }
      try {
        out.add(valueOf(w.toUpperCase(Locale.ROOT)));
      } catch (IllegalArgumentException e) {
        throw new IllegalArgumentException("unknown carrier '" + w + "' (known: ws, poll, obfs4)");
      }
    }
    if (out.isEmpty()) {
      throw new IllegalArgumentException("no carriers named in '" + text + "'");
    }
    return out;
  }
}
