package org.ferry.server.internal.store;

import java.io.IOException;
import org.rocksdb.RocksDBException;
import org.rocksdb.Status;

/** The store could not do what was asked; nothing partial was written. */
public final class StoreException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  private final boolean diskFull;

  public StoreException(String message, Throwable cause) {
    super(message, cause);
    this.diskFull = isDiskFull(cause);
  }

  private StoreException(String message) {
    super(message, null);
    this.diskFull = true;
  }

  /** The store refuses a write because its disk is full or nearly full ({@link DiskSpace}). */
  static StoreException diskFull(String message) {
    return new StoreException(message);
  }

  /** Whether the write failed for lack of disk space (it may work once there is room again). */
  public boolean diskFull() {
    return diskFull;
  }

  /**
   * ENOSPC anywhere in the chain (a future's failure, possibly wrapped): RocksDB's NoSpace
   * status, or an I/O error saying so.
   */
  public static boolean isDiskFull(Throwable t) {
    for (Throwable c = t; c != null; c = c.getCause()) {
      if (c instanceof StoreException s && s.diskFull) {
        return true;
      }
      if (c instanceof RocksDBException r && r.getStatus() != null
          && r.getStatus().getSubCode() == Status.SubCode.NoSpace) {
        return true;
      }
      if ((c instanceof RocksDBException || c instanceof IOException)
          && String.valueOf(c.getMessage()).contains("No space left on device")) {
        return true;
      }
    }
    return false;
  }
}
