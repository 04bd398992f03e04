package org.ferry.it;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A strict parser of the Prometheus text exposition format, version 0.0.4
 * (prometheus.io/docs/instrumenting/exposition_formats/, "Text-based format"): HELP and TYPE
 * lines, samples with escaped label values, float values (NaN, +Inf, -Inf) and optional
 * timestamps. Anything else, a TYPE after its family's samples or given twice, a sample of
 * an undeclared family, a repeated series, a histogram bucket without {@code le}, is an error
 * naming the line.
 */
public final class PrometheusText {

  /**
   * Scrapes {@code GET /metrics} at {@code metrics} and returns the sum of every sample named
   * {@code sample}, whatever its labels (0 if there is none).
   */
  public static double sum(java.net.InetSocketAddress metrics, String sample) throws Exception {
    String body = java.net.http.HttpClient.newHttpClient().send(
        java.net.http.HttpRequest.newBuilder(java.net.URI.create(
            "http://" + org.ferry.proto.HostPort.format(metrics.getHostString(), metrics.getPort()) + "/metrics"))
            .timeout(java.time.Duration.ofSeconds(10)).build(),
        java.net.http.HttpResponse.BodyHandlers.ofString()).body();
    return parse(body).values().stream().flatMap(f -> f.samples().stream())
        .filter(s -> s.name().equals(sample)).mapToDouble(Sample::value).sum();
  }
  private static final String NAME = "[a-zA-Z_:][a-zA-Z0-9_:]*";
  private static final Pattern HELP = Pattern.compile("# HELP (" + NAME + ") (.*)");
  private static final Pattern TYPE = Pattern.compile("# TYPE (" + NAME + ") (counter|gauge|histogram|summary|untyped)");
  private static final Pattern SAMPLE_NAME = Pattern.compile(NAME);
  private static final Pattern LABEL_NAME = Pattern.compile("[a-zA-Z_][a-zA-Z0-9_]*");
  private static final Pattern VALUE = Pattern.compile(
      "(?:[+-]?(?:\\d+\\.?\\d*(?:[eE][+-]?\\d+)?|\\.\\d+(?:[eE][+-]?\\d+)?)|NaN|[+-]Inf)");
  private static final Pattern TIMESTAMP = Pattern.compile("-?\\d+");

  record Sample(String name, Map<String, String> labels, double value) {}

  record Family(String name, String type, List<Sample> samples) {}

  private PrometheusText() {}

  /** Parses a whole exposition; families by name, in order. */
  static Map<String, Family> parse(String text) {
    Map<String, Family> families = new LinkedHashMap<>();
    Map<String, String> types = new HashMap<>();
    Set<String> sampled = new HashSet<>();
    Set<String> series = new HashSet<>();
    Set<String> helped = new HashSet<>();
    String[] lines = text.split("\n", -1);
    for (int i = 0; i < lines.length; i++) {
      String line = lines[i];
      int n = i + 1;
      if (line.isEmpty()) {
        if (i != lines.length - 1) {
          throw error(n, "empty line");
        }
        continue;
      }
      if (line.startsWith("#")) {
        Matcher h = HELP.matcher(line);
        Matcher t = TYPE.matcher(line);
        if (h.matches()) {
          if (!helped.add(h.group(1))) {
            throw error(n, "second HELP for " + h.group(1));
          }
          checkEscapes(h.group(2), false, n);
        } else if (t.matches()) {
          String name = t.group(1);
          if (types.containsKey(name)) {
            throw error(n, "second TYPE for " + name);
          }
          if (sampled.contains(name)) {
            throw error(n, "TYPE for " + name + " after its samples");
          }
          types.put(name, t.group(2));
          families.put(name, new Family(name, t.group(2), new ArrayList<>()));
        } else if (line.startsWith("# HELP") || line.startsWith("# TYPE")) {
          throw error(n, "malformed HELP or TYPE line");
        }
        continue;
      }
      Sample s = sample(line, n);
      String family = familyOf(s.name(), types);
      if (family == null) {
        throw error(n, "sample " + s.name() + " of no declared family");
      }
      if ("histogram".equals(types.get(family)) && s.name().endsWith("_bucket") && !s.labels().containsKey("le")) {
        throw error(n, "histogram bucket without le");
      }
      if (!series.add(s.name() + new java.util.TreeMap<>(s.labels()))) {
        throw error(n, "repeated series " + s.name() + s.labels());
      }
      sampled.add(family);
      families.get(family).samples().add(s);
    }
    return families;
  }

  private static String familyOf(String sample, Map<String, String> types) {
    if (types.containsKey(sample)) {
      return sample;
    }
    for (String suffix : List.of("_bucket", "_sum", "_count", "_created")) {
      if (sample.endsWith(suffix)) {
        String base = sample.substring(0, sample.length() - suffix.length());
        String type = types.get(base);
        if (type != null && (type.equals("histogram") || type.equals("summary") || suffix.equals("_created"))) {
          return base;
        }
      }
    }
    return null;
  }

  private static Sample sample(String line, int n) {
    Matcher name = SAMPLE_NAME.matcher(line);
    if (!name.lookingAt()) {
      throw error(n, "no metric name");
    }
    int at = name.end();
    Map<String, String> labels = new LinkedHashMap<>();
    if (at < line.length() && line.charAt(at) == '{') {
      at++;
      while (true) {
        if (at < line.length() && line.charAt(at) == '}') {
          at++;
          break;
        }
        Matcher label = LABEL_NAME.matcher(line).region(at, line.length());
        if (!label.lookingAt()) {
          throw error(n, "bad label name");
        }
        at = label.end();
        if (!line.startsWith("=\"", at)) {
          throw error(n, "label without =\"");
        }
        at += 2;
        StringBuilder value = new StringBuilder();
        while (true) {
          if (at >= line.length()) {
            throw error(n, "unterminated label value");
          }
          char c = line.charAt(at++);
          if (c == '"') {
            break;
          }
          if (c == '\\') {
            if (at >= line.length()) {
              throw error(n, "dangling escape");
            }
            char e = line.charAt(at++);
            switch (e) {
              case '\\' -> value.append('\\');
              case '"' -> value.append('"');
              case 'n' -> value.append('\n');
              default -> throw error(n, "bad escape \\" + e);
            }
          } else {
            value.append(c);
          }
        }
        if (labels.put(label.group(), value.toString()) != null) {
          throw error(n, "label " + label.group() + " twice");
        }
        if (at < line.length() && line.charAt(at) == ',') {
          at++;
        } else if (at >= line.length() || line.charAt(at) != '}') {
          throw error(n, "expected , or }");
        }
      }
    }
    String[] rest = line.substring(at).split(" ", -1);
    // " value" or " value timestamp": one space each.
    if (rest.length < 2 || rest.length > 3 || !rest[0].isEmpty()) {
      throw error(n, "expected ' VALUE [TIMESTAMP]'");
    }
    if (!VALUE.matcher(rest[1]).matches()) {
      throw error(n, "bad value '" + rest[1] + "'");
    }
    if (rest.length == 3 && !TIMESTAMP.matcher(rest[2]).matches()) {
      throw error(n, "bad timestamp '" + rest[2] + "'");
    }
    double v = switch (rest[1]) {
      case "+Inf" -> Double.POSITIVE_INFINITY;
      case "-Inf" -> Double.NEGATIVE_INFINITY;
      default -> Double.parseDouble(rest[1]);
    };
    return new Sample(name.group(), labels, v);
  }

  private static void checkEscapes(String doc, boolean quotes, int n) {
    for (int i = 0; i < doc.length(); i++) {
      if (doc.charAt(i) == '\\') {
        char e = i + 1 < doc.length() ? doc.charAt(i + 1) : ' ';
        if (e != '\\' && e != 'n' && !(quotes && e == '"')) {
          throw error(n, "bad escape in HELP");
        }
        i++;
      }
    }
  }

  private static IllegalArgumentException error(int line, String why) {
    return new IllegalArgumentException("exposition line " + line + ": " + why);
  }
}
