package org.ferry.server.internal.backup;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A backup's manifest ({@value ServerBackup#MANIFEST}), as {@link ServerBackup#copyOut} writes it:
 * {@code ferry-backup 1}, {@code fingerprint FP}, {@code created TIME}, then
 * {@code file SHA256 SIZE PATH} per file, PATH relative with {@code /}.
 */
record Manifest(String fingerprint, List<Entry> files) {
  private static final Pattern FILE = Pattern.compile("file ([0-9a-f]{64}) ([0-9]{1,19}) (.+)");
  private static final Pattern PART = Pattern.compile("[A-Za-z0-9._-]+");

  record Entry(byte[] sha256, long size, String path) {}

  /**
   * Reads the manifest of {@code backup}.
   *
   * @throws IOException naming what is wrong: no manifest (an incomplete backup, or not one),
   *     another format, or a line that is not what backups write
   */
  static Manifest read(Path backup) throws IOException {
    List<String> lines;
    try {
      lines = Files.readAllLines(backup.resolve(ServerBackup.MANIFEST), StandardCharsets.UTF_8);
    } catch (NoSuchFileException e) {
      throw new IOException(backup + " is not a complete Ferry server backup (it has no "
          + ServerBackup.MANIFEST + " file, which a backup writes last)", e);
    }
    if (lines.size() < 3 || !lines.get(0).equals("ferry-backup 1") || !lines.get(1).startsWith("fingerprint ")) {
      throw new IOException(backup + ": " + ServerBackup.MANIFEST + " is not a backup manifest this version reads");
    }
    String fingerprint = lines.get(1).substring("fingerprint ".length());
    List<Entry> files = new ArrayList<>();
    for (int i = 3; i < lines.size(); i++) {
      Matcher m = FILE.matcher(lines.get(i));
      if (!m.matches() || !safe(m.group(3))) {
        throw new IOException(backup + ": " + ServerBackup.MANIFEST + " line " + (i + 1) + " is damaged");
      }
      files.add(new Entry(HexFormat.of().parseHex(m.group(1)), Long.parseLong(m.group(2)), m.group(3)));
    }
    return new Manifest(fingerprint, List.copyOf(files));
  }

  /** A relative path of plain names: nothing that climbs out of the data directory. */
  private static boolean safe(String path) {
    for (String part : path.split("/", -1)) {
      if (!PART.matcher(part).matches() || part.equals(".") || part.equals("..")) {
        return false;
      }
    }
    return true;
  }
}
