package org.ferry.server.internal.store;

/** The store could not do what was asked; nothing partial was written. */
public final class StoreException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  public StoreException(String message, Throwable cause) {
    super(message, cause);
  }
}
