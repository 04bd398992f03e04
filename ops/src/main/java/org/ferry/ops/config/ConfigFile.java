package org.ferry.ops.config;

import com.fasterxml.jackson.core.JacksonException;
import com.fasterxml.jackson.core.JsonLocation;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.dataformat.toml.TomlMapper;
import java.io.IOException;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import picocli.CommandLine;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Model.OptionSpec;

/**
 * A TOML config file behind a picocli command's flags (TOML 1.0, <a href="https://toml.io/en/v1.0.0">toml.io</a>).
 *
 * <p>Every visible option {@code --some-flag} has the top-level key {@code some-flag}; a flag on
 * the command line wins over the file, the file over the option's default. Types are TOML's
 * own: strings for text, paths, addresses, durations ({@code "21d"}) and sizes ({@code "64M"},
 * or an integer number of bytes); integers for counts; integers or floats for rates; arrays of
 * strings for options that may be given more than once. A file
 * with a key no option has, a value of the wrong type or out of range, or a TOML syntax error
 * gives a {@link ConfigException} whose one-line message names the key, the file and the line.
 *
 * <p>Options listed in {@code notInFile} (the file's own option, help, print-config) and hidden
 * options have no key.
 */
public final class ConfigFile {
  private static final TomlMapper TOML = new TomlMapper();

  private final CommandSpec spec;
  private final List<String> notInFile;
  private final Map<String, Source> sources = new LinkedHashMap<>();

  /** Where an option's value came from: the command line, a file's line, or the default. */
  record Source(Optional<Path> file, int line) {
    static final Source COMMAND_LINE = new Source(Optional.empty(), -1);
    static final Source DEFAULT = new Source(Optional.empty(), 0);
  }

  private ConfigFile(CommandSpec spec, List<String> notInFile) {
    this.spec = spec;
    this.notInFile = List.copyOf(notInFile);
  }

  /**
   * For a command whose arguments {@code cmd} has parsed already: records which options the
   * command line gave, so that {@link #load} leaves those alone.
   *
   * @param notInFile option names (with dashes) that have no key, such as {@code --config}
   */
  public static ConfigFile of(CommandLine cmd, String... notInFile) {
    ConfigFile config = new ConfigFile(cmd.getCommandSpec(), List.of(notInFile));
    CommandLine.ParseResult parsed = cmd.getParseResult();
    for (OptionSpec option : config.keyedOptions()) {
      config.sources.put(keyOf(option),
          parsed != null && parsed.hasMatchedOption(option) ? Source.COMMAND_LINE : Source.DEFAULT);
    }
    return config;
  }

  /**
   * Sets every option that the command line did not give from {@code file}.
   *
   * @throws ConfigException if the file cannot be read, is not TOML, or has an unknown key or a
   *     value of the wrong type or out of the option's range (as its converter says)
   */
  public ConfigFile load(Path file) throws ConfigException {
    String text;
    try {
      text = StandardCharsets.UTF_8.newDecoder()
          .onMalformedInput(CodingErrorAction.REPORT)
          .decode(java.nio.ByteBuffer.wrap(Files.readAllBytes(file)))
          .toString();
    } catch (NoSuchFileException e) {
      throw new ConfigException("config file " + file + " does not exist");
    } catch (CharacterCodingException e) {
      throw new ConfigException("config file " + file + " is not UTF-8 text");
    } catch (IOException e) {
      throw new ConfigException("cannot read config file " + file + ": " + e.getMessage());
    }
    JsonNode root;
    try {
      root = TOML.readTree(text);
    } catch (JacksonException e) {
      String why = firstLine(e.getOriginalMessage());
      var twice = new KeyLines(text).firstDuplicate();
      if (why.startsWith("Duplicate key") && twice.isPresent()) {
        throw new ConfigException(file + " line " + twice.get().getValue() + ": '" + twice.get().getKey()
            + "' is set a second time");
      }
      JsonLocation at = e.getLocation();
      String where = at != null && at.getLineNr() > 0 ? " line " + at.getLineNr() : "";
      throw new ConfigException(file + where + ": not valid TOML: " + why);
    }
    KeyLines lines = new KeyLines(text);
    Map<String, OptionSpec> byKey = new LinkedHashMap<>();
    for (OptionSpec option : keyedOptions()) {
      byKey.put(keyOf(option), option);
    }
    Iterator<Map.Entry<String, JsonNode>> fields = ((ObjectNode) root).fields();
    while (fields.hasNext()) {
      Map.Entry<String, JsonNode> field = fields.next();
      String key = field.getKey();
      Source source = new Source(Optional.of(file), lines.lineOf(key));
      OptionSpec option = byKey.get(key);
      if (option == null) {
        throw new ConfigException(where(source) + ": unknown key '" + key + "'" + suggestion(key, byKey.keySet()));
      }
      Object value;
      try {
        // Checked even where a flag wins: a wrong file is wrong the next time too.
        value = convert(option, field.getValue());
      } catch (IllegalArgumentException | CommandLine.TypeConversionException e) {
        throw new ConfigException(where(source) + ": " + key + ": " + e.getMessage());
      }
      if (sources.get(key) != Source.COMMAND_LINE) {
        option.setValue(value);
        sources.put(key, source);
      }
    }
    return this;
  }

  /**
   * Checks the option's final value (from wherever it came) and names where it came from on a
   * failure, as {@code FILE line N: key: why} or {@code --key: why}.
   *
   * @param check throws IllegalArgumentException, with the reason, for a bad value
   */
  public <T> void check(String key, Check<T> check) throws ConfigException {
    OptionSpec option = Objects.requireNonNull(spec.findOption("--" + key), key);
    T value = option.getValue();
    if (value == null) {
      return;
    }
    try {
      check.check(value);
    } catch (IllegalArgumentException e) {
      throw new ConfigException(describe(key) + ": " + e.getMessage());
    }
  }

  /** {@code --key} or {@code FILE line N: key}: where the option's value came from. */
  public String describe(String key) {
    Source source = sources.getOrDefault(key, Source.DEFAULT);
    return source.file().isPresent() ? where(source) + ": " + key : "--" + key;
  }

  /** A check of one option's value. */
  @FunctionalInterface
  public interface Check<T> {
    /** @throws IllegalArgumentException with the reason, if {@code value} is not allowed */
    void check(T value);
  }

  /**
   * The effective configuration as a TOML file that {@link #load} reads back: every key with
   * its value, or commented out where it has none. Prints option values only, never the
   * contents of files they name.
   */
  public String print() {
    StringBuilder out = new StringBuilder();
    for (OptionSpec option : keyedOptions()) {
      String key = keyOf(option);
      Object value = option.getValue();
      Source source = sources.get(key);
      String from = source == Source.COMMAND_LINE ? "command line"
          : source.file().isPresent() ? source.file().get() + " line " + source.line() : "default";
      if (value == null) {
        out.append("# ").append(key).append(" = (not set)\n");
        continue;
      }
      out.append(key).append(" = ").append(tomlValue(option, value)).append("  # ").append(from).append('\n');
    }
    return out.toString();
  }

  private String tomlValue(OptionSpec option, Object value) {
    Class<?> type = option.type();
    if (value instanceof List<?> list) {
      List<String> quoted = new ArrayList<>();
      list.forEach(v -> quoted.add(quote(String.valueOf(v))));
      return "[" + String.join(", ", quoted) + "]";
    }
    if (value instanceof Boolean || (isNumber(type) && !hasConverter(option))) {
      return String.valueOf(value);
    }
    // What the user wrote (or the default string), for durations and sizes as people write them.
    String shown = hasConverter(option) ? rawText(option, value) : String.valueOf(value);
    return quote(shown);
  }

  private String rawText(OptionSpec option, Object value) {
    List<String> strings = option.stringValues();
    if (!strings.isEmpty()) {
      return strings.get(strings.size() - 1);
    }
    String raw = rawFromFile.get(keyOf(option));
    if (raw != null) {
      return raw;
    }
    return option.defaultValue() != null ? option.defaultValue() : String.valueOf(value);
  }

  private final Map<String, String> rawFromFile = new LinkedHashMap<>();

  private Object convert(OptionSpec option, JsonNode node) throws ConfigException {
    Class<?> type = option.type();
    if (List.class.isAssignableFrom(type)) {
      // A repeatable option: an array of strings in the file, as the flag given once per element.
      if (!node.isArray()) {
        throw new IllegalArgumentException("expected an array of strings, such as [\"a\", \"b\"]; got "
            + describeNode(node));
      }
      List<String> values = new ArrayList<>();
      for (JsonNode element : node) {
        if (!element.isTextual()) {
          throw new IllegalArgumentException("expected an array of strings; got an element that is "
              + describeNode(element));
        }
        values.add(element.textValue());
      }
      return values;
    }
    String key = keyOf(option);
    if (hasConverter(option)) {
      String text;
      if (node.isTextual()) {
        text = node.textValue();
      } else if (node.isIntegralNumber() && isNumber(type)) {
        text = node.asText();
      } else {
        throw new IllegalArgumentException("expected a string, such as \""
            + Optional.ofNullable(option.defaultValue()).orElse("...") + "\"; got " + describeNode(node));
      }
      rawFromFile.put(key, text);
      try {
        return option.converters()[0].convert(text);
      } catch (CommandLine.TypeConversionException e) {
        throw e;
      } catch (Exception e) {
        throw new IllegalArgumentException(e.getMessage(), e);
      }
    }
    if (type == String.class || type == Path.class) {
      if (!node.isTextual()) {
        throw new IllegalArgumentException("expected a string; got " + describeNode(node));
      }
      return type == Path.class ? Path.of(node.textValue()) : node.textValue();
    }
    if (type == boolean.class || type == Boolean.class) {
      if (!node.isBoolean()) {
        throw new IllegalArgumentException("expected true or false; got " + describeNode(node));
      }
      return node.booleanValue();
    }
    if (type == int.class || type == Integer.class || type == long.class || type == Long.class) {
      if (!node.isIntegralNumber()) {
        throw new IllegalArgumentException("expected an integer; got " + describeNode(node));
      }
      boolean isInt = type == int.class || type == Integer.class;
      if (isInt ? !node.canConvertToInt() : !node.canConvertToLong()) {
        throw new IllegalArgumentException("out of range: " + node.asText());
      }
      return isInt ? (Object) node.intValue() : (Object) node.longValue();
    }
    if (type == double.class || type == Double.class) {
      if (!node.isNumber()) {
        throw new IllegalArgumentException("expected a number; got " + describeNode(node));
      }
      return node.doubleValue();
    }
    throw new IllegalStateException("option " + option.longestName() + " of type " + type + " has no config key");
  }

  private static boolean hasConverter(OptionSpec option) {
    CommandLine.ITypeConverter<?>[] converters = option.converters();
    return converters != null && converters.length > 0;
  }

  private static boolean isNumber(Class<?> type) {
    return type == int.class || type == long.class || type == double.class
        || Number.class.isAssignableFrom(type);
  }

  private static String describeNode(JsonNode node) {
    if (node.isTextual()) {
      return "a string";
    }
    if (node.isBoolean()) {
      return "a boolean";
    }
    if (node.isIntegralNumber()) {
      return "an integer";
    }
    if (node.isNumber()) {
      return "a float";
    }
    if (node.isArray()) {
      return "an array";
    }
    if (node.isObject()) {
      return "a table";
    }
    return node.getNodeType().toString().toLowerCase(Locale.ROOT);
  }

  private List<OptionSpec> keyedOptions() {
    List<OptionSpec> keyed = new ArrayList<>();
    for (OptionSpec option : spec.options()) {
      if (option.hidden() || option.usageHelp() || option.versionHelp()
          || notInFile.contains(option.longestName())) {
        continue;
      }
      keyed.add(option);
    }
    return keyed;
  }

  private static String keyOf(OptionSpec option) {
    return option.longestName().replaceFirst("^-+", "");
  }

  private static String where(Source source) {
    return source.file().orElseThrow() + (source.line() > 0 ? " line " + source.line() : "");
  }

  private static String suggestion(String key, Iterable<String> known) {
    String normalized = key.replace('_', '-').toLowerCase(Locale.ROOT);
    for (String k : known) {
      if (k.equals(normalized) || ("--" + k).equals(key)) {
        return " (did you mean '" + k + "'?)";
      }
    }
    return "";
  }

  private static String firstLine(String message) {
    if (message == null) {
      return "syntax error";
    }
    int nl = message.indexOf('\n');
    return nl < 0 ? message : message.substring(0, nl);
  }

  /** A TOML basic string (TOML 1.0, "Basic strings"): quotes, backslashes and controls escaped. */
  static String quote(String s) {
    StringBuilder b = new StringBuilder("\"");
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      switch (c) {
        case '"' -> b.append("\\\"");
        case '\\' -> b.append("\\\\");
        case '\n' -> b.append("\\n");
        case '\t' -> b.append("\\t");
        case '\r' -> b.append("\\r");
        default -> {
          if (c < 0x20 || c == 0x7f) {
            b.append(String.format("\\u%04X", (int) c));
          } else {
            b.append(c);
          }
        }
      }
    }
    return b.append('"').toString();
  }
}
