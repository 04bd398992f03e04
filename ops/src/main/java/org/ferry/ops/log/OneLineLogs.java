package org.ferry.ops.log;

import java.util.IdentityHashMap;
import java.util.Map;
import java.util.logging.Handler;
import java.util.logging.Level;
import java.util.logging.LogManager;
import java.util.logging.LogRecord;
import java.util.logging.SimpleFormatter;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One log line per event: failures described on the line itself (not as a stack trace over
 * many lines), and java.util.logging (gRPC's, the JDK's) sent through slf4j like the rest, so
 * that an operator's journal holds one parseable line per event at every level.
 */
public final class OneLineLogs {
  /** Causes described, at most: enough to tell a wrapped failure from its origin. */
  private static final int MAX_CAUSES = 4;

  private OneLineLogs() {}

  /**
   * {@code Class: message (at frame)}, then {@code ; caused by ...} for each cause: the
   * exceptions' simple class names and messages with line breaks turned into spaces, and the
   * frame each was thrown from. Never contains a line break.
   */
  public static String describe(Throwable failure) {
    StringBuilder b = new StringBuilder();
    Map<Throwable, Boolean> seen = new IdentityHashMap<>();
    Throwable t = failure;
    for (int n = 0; t != null && n < MAX_CAUSES && seen.put(t, Boolean.TRUE) == null; n++, t = t.getCause()) {
      if (n > 0) {
        b.append("; caused by ");
      }
      b.append(t.getClass().getSimpleName());
      if (t.getMessage() != null) {
        b.append(": ").append(flat(t.getMessage()));
      }
      StackTraceElement[] frames = t.getStackTrace();
      if (frames.length > 0) {
        b.append(" (at ").append(frames[0]).append(')');
      }
    }
    if (t != null && !seen.containsKey(t)) {
      b.append("; ...");
    }
    return b.toString();
  }

  /**
   * Replaces java.util.logging's console output with slf4j: each record becomes one slf4j line
   * under its logger's name, at the matching level (SEVERE error, WARNING warn, INFO info,
   * lower debug), a thrown exception described by {@link #describe}. Levels set on
   * java.util.logging loggers (gRPC's SEVERE) still filter first.
   */
  public static void routeJavaUtilLogging() {
    java.util.logging.Logger root = LogManager.getLogManager().getLogger("");
    for (Handler h : root.getHandlers()) {
      root.removeHandler(h);
    }
    root.addHandler(new ToSlf4j());
  }

  private static String flat(String s) {
    return s.replaceAll("[\\r\\n\\t]+", " ").strip();
  }

  private static final class ToSlf4j extends Handler {
    private final SimpleFormatter messages = new SimpleFormatter();

    @Override
    public void publish(LogRecord record) {
      if (record == null) {
        return;
      }
      Logger log = LoggerFactory.getLogger(record.getLoggerName() == null ? "jul" : record.getLoggerName());
      String message = flat(String.valueOf(messages.formatMessage(record)));
      if (record.getThrown() != null) {
        message = message + ": " + describe(record.getThrown());
      }
      int level = record.getLevel().intValue();
      if (level >= Level.SEVERE.intValue()) {
        log.error("{}", message);
      } else if (level >= Level.WARNING.intValue()) {
        log.warn("{}", message);
      } else if (level >= Level.INFO.intValue()) {
        log.info("{}", message);
      } else {
        log.debug("{}", message);
      }
    }

    @Override
    public void flush() {}

    @Override
    public void close() {}
  }
}
