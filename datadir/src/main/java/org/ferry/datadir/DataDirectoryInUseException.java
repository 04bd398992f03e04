package org.ferry.datadir;

import java.io.IOException;
import java.nio.file.Path;

/** Another process holds the data directory's lock; its message is one line naming the directory. */
public final class DataDirectoryInUseException extends IOException {
  private static final long serialVersionUID = 1L;

  private final transient Path directory;

  DataDirectoryInUseException(Path directory, long holderPid) {
    super("data directory " + directory + " is in use by another Ferry process"
        + (holderPid > 0 ? " (pid " + holderPid + ")" : "")
        + "; stop it first, or give this one its own data directory");
    this.directory = directory;
  }

  /** The directory that is in use. */
  public Path directory() {
    return directory;
  }
}
