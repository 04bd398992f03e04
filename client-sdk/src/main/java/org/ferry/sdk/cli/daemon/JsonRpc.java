package org.ferry.sdk.cli.daemon;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonNull;
import com.google.gson.JsonObject;
import com.google.gson.JsonPrimitive;
import com.google.gson.Strictness;
import com.google.gson.stream.JsonReader;
import com.google.gson.stream.JsonToken;
import com.google.gson.stream.JsonWriter;
import java.io.IOException;
import java.io.StringReader;
import java.io.StringWriter;

/**
 * JSON-RPC 2.0 messages (https://www.jsonrpc.org/specification), one per line, as Gson trees read
 * and written with Gson's streaming classes (no reflection, few classes: cheap to start, which the
 * command line's fast path needs).
 */
final class JsonRpc {
  static final int PARSE_ERROR = -32700;
  static final int INVALID_REQUEST = -32600;
  static final int METHOD_NOT_FOUND = -32601;
  static final int INVALID_PARAMS = -32602;
  static final int INTERNAL_ERROR = -32603;

  private JsonRpc() {}

  /** An error to answer a request with. */
  static final class Failure extends Exception {
    private static final long serialVersionUID = 1L;
    final int code;
    final transient JsonElement data;

    Failure(int code, String message) {
      this(code, message, JsonNull.INSTANCE);
    }

    Failure(int code, String message, JsonElement data) {
      super(message, null, false, false);
      this.code = code;
      this.data = data;
    }
  }

  /**
   * Parses one line strictly (RFC 8259: no comments, single quotes or trailing text).
   *
   * @throws Failure PARSE_ERROR if it is not one JSON value
   */
  static JsonElement parse(String line) throws Failure {
    try (JsonReader reader = new JsonReader(new StringReader(line))) {
      reader.setStrictness(Strictness.STRICT);
      JsonElement value = read(reader, 0);
      if (reader.peek() != JsonToken.END_DOCUMENT) {
        throw new Failure(PARSE_ERROR, "Parse error: text after the JSON value");
      }
      return value;
    } catch (IOException | IllegalStateException | NumberFormatException e) {
      throw new Failure(PARSE_ERROR, "Parse error: not valid JSON");
    }
  }

  /** Deeper nesting than any request needs; refused before it can exhaust the stack. */
  private static final int MAX_DEPTH = 64;

  /**
   * One value, read with Gson's streaming reader only: its tree adapters would load some 100
   * classes, a good part of the fast path's start-up.
   */
  private static JsonElement read(JsonReader in, int depth) throws IOException {
    if (depth > MAX_DEPTH) {
      throw new IOException("nested too deeply");
    }
    switch (in.peek()) {
      case BEGIN_ARRAY -> {
        JsonArray a = new JsonArray();
        in.beginArray();
        while (in.hasNext()) {
          a.add(read(in, depth + 1));
        }
        in.endArray();
        return a;
      }
      case BEGIN_OBJECT -> {
        JsonObject o = new JsonObject();
        in.beginObject();
        while (in.hasNext()) {
          String name = in.nextName();
          o.add(name, read(in, depth + 1));
        }
        in.endObject();
        return o;
      }
      case STRING -> {
        return new JsonPrimitive(in.nextString());
      }
      case NUMBER -> {
        return new JsonPrimitive(new java.math.BigDecimal(in.nextString()));
      }
      case BOOLEAN -> {
        return new JsonPrimitive(in.nextBoolean());
      }
      case NULL -> {
        in.nextNull();
        return JsonNull.INSTANCE;
      }
      default -> throw new IOException("unexpected " + in.peek());
    }
  }

  private static void write(JsonWriter out, JsonElement e) throws IOException {
    if (e.isJsonNull()) {
      out.nullValue();
    } else if (e.isJsonArray()) {
      out.beginArray();
      for (JsonElement x : e.getAsJsonArray()) {
        write(out, x);
      }
      out.endArray();
    } else if (e.isJsonObject()) {
      out.beginObject();
      for (var entry : e.getAsJsonObject().entrySet()) {
        out.name(entry.getKey());
        write(out, entry.getValue());
      }
      out.endObject();
    } else {
      JsonPrimitive p = e.getAsJsonPrimitive();
      if (p.isBoolean()) {
        out.value(p.getAsBoolean());
      } else if (p.isNumber()) {
        out.value(p.getAsNumber());
      } else {
        out.value(p.getAsString());
      }
    }
  }

  static JsonObject request(long id, String method, JsonObject params) {
    JsonObject o = notification(method, params);
    o.addProperty("id", id);
    return o;
  }

  static JsonObject notification(String method, JsonObject params) {
    JsonObject o = new JsonObject();
    o.addProperty("jsonrpc", "2.0");
    o.addProperty("method", method);
    o.add("params", params);
    return o;
  }

  static JsonObject result(JsonElement id, JsonElement result) {
    JsonObject o = new JsonObject();
    o.addProperty("jsonrpc", "2.0");
    o.add("result", result);
    o.add("id", id);
    return o;
  }

  static JsonObject error(JsonElement id, Failure f) {
    JsonObject error = new JsonObject();
    error.addProperty("code", f.code);
    error.addProperty("message", f.getMessage());
    if (!f.data.isJsonNull()) {
      error.add("data", f.data);
    }
    JsonObject o = new JsonObject();
    o.addProperty("jsonrpc", "2.0");
    o.add("error", error);
    o.add("id", id);
    return o;
  }

  /**
   * {@code value} on one line. Besides what JSON requires, C1 controls and bidirectional
   * overrides are escaped too, so that a line shown on a terminal cannot steer it (a message's
   * text is the sender's choice).
   */
  static String toLine(JsonElement value) {
    StringWriter text = new StringWriter();
    try (JsonWriter writer = new JsonWriter(text)) {
      writer.setHtmlSafe(false);
      writer.setSerializeNulls(true);
      write(writer, value);
    } catch (IOException e) {
      throw new IllegalStateException("a StringWriter failed", e);
    }
    String json = text.toString();
    StringBuilder out = null;
    for (int i = 0; i < json.length(); i++) {
      char c = json.charAt(i);
      boolean escape = (c >= 0x7f && c <= 0x9f) || c == 0x200e || c == 0x200f
          || (c >= 0x202a && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069);
      if (escape && out == null) {
        out = new StringBuilder(json.length() + 16).append(json, 0, i);
      }
      if (out != null) {
        if (escape) {
          out.append(String.format("\\u%04x", (int) c));
        } else {
          out.append(c);
        }
      }
    }
    return out == null ? json : out.toString();
  }
}
