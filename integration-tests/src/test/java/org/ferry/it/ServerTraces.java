package org.ferry.it;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HashSet;
import java.util.HexFormat;
import java.util.List;
import java.util.Set;
import org.rocksdb.ColumnFamilyDescriptor;
import org.rocksdb.ColumnFamilyHandle;
import org.rocksdb.DBOptions;
import org.rocksdb.Options;
import org.rocksdb.RocksDB;
import org.rocksdb.RocksDBException;
import org.rocksdb.RocksIterator;

/**
 * What would identify users if a server showed it: the loopback ports its clients connect
 * from, and the mailbox ids in its store, in every text form a log or label could use.
 */
final class ServerTraces {
  private ServerTraces() {}

  /**
   * The local ports of this machine's TCP connections to {@code serverPort} right now (from
   * /proc/net/tcp and tcp6): the clients' source ports as the server sees them.
   */
  static Set<Integer> clientPorts(int serverPort) throws IOException {
    Set<Integer> ports = new HashSet<>();
    for (String table : List.of("/proc/net/tcp", "/proc/net/tcp6")) {
      Path p = Path.of(table);
      if (!Files.exists(p)) {
        continue;
      }
      for (String line : Files.readAllLines(p).subList(1, Files.readAllLines(p).size())) {
        String[] f = line.trim().split("\\s+");
        int local = Integer.parseInt(f[1].substring(f[1].indexOf(':') + 1), 16);
        int remote = Integer.parseInt(f[2].substring(f[2].indexOf(':') + 1), 16);
        if (remote == serverPort && local != serverPort) {
          ports.add(local);
        }
      }
    }
    return ports;
  }

  /**
   * Every mailbox id in a stopped server's store ({@code DATA/store}, the {@code mailboxes}
   * column family's keys), as hex, base64 and base64url (padded or not), and the first 4 bytes
   * of each in hex (a shortened id, as {@code MailboxId.toString} gives, still links).
   */
  static List<String> mailboxIdTexts(Path store) throws RocksDBException {
    List<String> texts = new ArrayList<>();
    RocksDB.loadLibrary();
    List<byte[]> names;
    try (Options o = new Options()) {
      names = RocksDB.listColumnFamilies(o, store.toString());
    }
    List<ColumnFamilyDescriptor> descriptors = new ArrayList<>();
    for (byte[] n : names) {
      descriptors.add(new ColumnFamilyDescriptor(n));
    }
    List<ColumnFamilyHandle> handles = new ArrayList<>();
    try (DBOptions o = new DBOptions();
        RocksDB db = RocksDB.openReadOnly(o, store.toString(), descriptors, handles)) {
      try {
        for (int i = 0; i < names.size(); i++) {
          if (!new String(names.get(i), StandardCharsets.US_ASCII).equals("mailboxes")) {
            continue;
          }
          try (RocksIterator it = db.newIterator(handles.get(i))) {
            for (it.seekToFirst(); it.isValid(); it.next()) {
              byte[] id = it.key();
              texts.add(HexFormat.of().formatHex(id));
              texts.add(HexFormat.of().withUpperCase().formatHex(id));
              texts.add(HexFormat.of().formatHex(id, 0, 4));
              texts.add(Base64.getEncoder().withoutPadding().encodeToString(id));
              texts.add(Base64.getUrlEncoder().withoutPadding().encodeToString(id));
            }
          }
        }
      } finally {
        handles.forEach(ColumnFamilyHandle::close);
      }
    }
    return texts;
  }
}
