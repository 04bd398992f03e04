package org.ferry.sdk.cli.daemon;

import com.google.gson.Gson;
import com.google.gson.GsonBuilder;
import com.google.gson.JsonElement;
import com.google.gson.JsonNull;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;
import com.google.gson.Strictness;
import com.google.gson.stream.JsonReader;
import com.google.gson.stream.JsonToken;
import java.io.IOException;
import java.io.StringReader;

/**
 * JSON-RPC 2.0 messages (https://www.jsonrpc.org/specification), one per line, with Gson's tree
 * model (no reflection: cheap to start, which the command line's fast path needs).
 */
final class JsonRpc {
  static final int PARSE_ERROR = -32700;
  static final int INVALID_REQUEST = -32600;
  static final int METHOD_NOT_FOUND = -32601;
  static final int INVALID_PARAMS = -32602;
  static final int INTERNAL_ERROR = -32603;

  private static final Gson GSON = new GsonBuilder().disableHtmlEscaping().serializeNulls().create();

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
      JsonElement value = JsonParser.parseReader(reader);
      if (reader.peek() != JsonToken.END_DOCUMENT) {
        throw new Failure(PARSE_ERROR, "Parse error: text after the JSON value");
      }
      return value;
    } catch (JsonParseException | IOException | IllegalStateException e) {
      throw new Failure(PARSE_ERROR, "Parse error: not valid JSON");
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
    String json = GSON.toJson(value);
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
