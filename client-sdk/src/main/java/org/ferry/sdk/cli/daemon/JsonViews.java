package org.ferry.sdk.cli.daemon;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonNull;
import com.google.gson.JsonObject;
import com.google.gson.JsonPrimitive;
import java.time.Instant;
import java.util.Locale;
import java.util.Optional;
import org.ferry.proto.BridgeLine;
import org.ferry.sdk.Contact;
import org.ferry.sdk.NetworkStatus;
import org.ferry.sdk.ReceivedMessage;
import org.ferry.sdk.SendStatus;

/**
 * The SDK's values as JSON: what {@code --json} prints and what the daemon's methods return
 * (one shape for both). Times are ISO-8601 UTC strings; missing values are null. Bridge lines
 * appear in their short form, without secret path or certificate.
 */
public final class JsonViews {
  private JsonViews() {}

  /** One JSON value on one line, safe to show on a terminal. */
  public static String line(JsonElement value) {
    return JsonRpc.toLine(value);
  }

  public static JsonObject contact(Contact c) {
    JsonObject o = new JsonObject();
    o.addProperty("label", c.label());
    o.addProperty("state", c.state().name().toLowerCase(Locale.ROOT));
    o.add("safetyNumber", string(c.safetyNumber()));
    o.add("lastReceived", time(c.lastReceived()));
    return o;
  }

  public static JsonObject message(ReceivedMessage m) {
    JsonObject o = new JsonObject();
    o.addProperty("contact", m.contactLabel());
    o.addProperty("text", m.text());
    o.addProperty("sentAt", m.sentAt().toString());
    o.addProperty("receivedAt", m.receivedAt().toString());
    o.addProperty("messageId", m.messageId());
    return o;
  }

  /** A message id returned by a send. */
  public static JsonObject sent(String label, String messageId) {
    JsonObject o = new JsonObject();
    o.addProperty("contact", label);
    o.addProperty("messageId", messageId);
    return o;
  }

  /** A send not settled yet, or failed ({@code FerryClient.sends}). */
  public static JsonObject send(SendStatus s) {
    JsonObject o = sent(s.contactLabel(), s.messageId());
    o.addProperty("server", s.server());
    o.addProperty("state", s.state().name().toLowerCase(Locale.ROOT));
    o.addProperty("queuedAt", s.queuedAt().toString());
    o.add("heldByHomeSince", time(s.heldByHomeSince()));
    o.add("reason", string(s.failure().map(f -> f.reason().name())));
    o.add("message", string(s.failure().map(SendStatus.Failure::message)));
    o.add("failedAt", time(s.failure().map(SendStatus.Failure::at)));
    return o;
  }

  public static JsonObject network(NetworkStatus s) {
    JsonObject o = new JsonObject();
    o.addProperty("server", s.server());
    o.add("inUse", string(s.inUse().map(JsonViews::shortLine)));
    JsonArray lines = new JsonArray();
    for (NetworkStatus.Line l : s.lines()) {
      JsonObject line = new JsonObject();
      line.addProperty("line", shortLine(l.line()));
      line.addProperty("successes", l.successes());
      line.addProperty("failures", l.failures());
      line.add("lastSuccess", time(l.lastSuccess()));
      line.add("lastFailure", time(l.lastFailure()));
      line.add("backingOffUntil", time(l.backingOffUntil()));
      lines.add(line);
    }
    o.add("lines", lines);
    return o;
  }

  /** A line without its secret path or cert, for screens that others may see. */
  public static String shortLine(String line) {
    return BridgeLine.parse(line).shortForm();
  }

  public static JsonObject bridge(String line) {
    JsonObject o = new JsonObject();
    o.addProperty("line", line);
    return o;
  }

  private static JsonElement string(Optional<String> s) {
    return s.<JsonElement>map(JsonPrimitive::new).orElse(JsonNull.INSTANCE);
  }

  private static JsonElement time(Optional<Instant> t) {
    return string(t.map(Instant::toString));
  }
}
