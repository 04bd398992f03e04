package org.ferry.ops.config;

/**
 * A config file or flag that stops start-up; the message is one line for the operator, naming
 * the file, the line and the key (or the flag). Commands exit with status 2 on it.
 */
public final class ConfigException extends Exception {
  private static final long serialVersionUID = 1L;

  public ConfigException(String message) {
    super(message);
  }
}
