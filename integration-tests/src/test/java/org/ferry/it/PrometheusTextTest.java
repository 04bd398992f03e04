package org.ferry.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Map;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.Test;

class PrometheusTextTest {
  @Test
  void readsFamiliesLabelsEscapesAndSpecialValues() {
    Map<String, PrometheusText.Family> f = PrometheusText.parse("""
        # HELP calls_total Calls \\\\ finished\\n.
        # TYPE calls_total counter
        calls_total{method="a/B",code="OK"} 3.0
        calls_total{method="q\\"uote\\\\back\\nnl",code="OK",} 1e3 1700000000000
        # TYPE lat histogram
        lat_bucket{le="0.5"} 1
        lat_bucket{le="+Inf"} 2
        lat_sum 0.75
        lat_count 2
        # TYPE g gauge
        g NaN
        g{x="y"} -Inf
        """);
    assertEquals(3, f.size());
    assertEquals("counter", f.get("calls_total").type());
    assertEquals(3.0, f.get("calls_total").samples().get(0).value());
    assertEquals("q\"uote\\back\nnl", f.get("calls_total").samples().get(1).labels().get("method"));
    assertEquals(1000.0, f.get("calls_total").samples().get(1).value());
    assertEquals(4, f.get("lat").samples().size());
    assertTrue(Double.isNaN(f.get("g").samples().get(0).value()));
  }

  @ParameterizedTest
  @ValueSource(strings = {
      "# TYPE a counter\na{x=\"1\"} 1\na{x=\"1\"} 2\n",             // repeated series
      "a 1\n",                                                       // undeclared family
      "# TYPE a counter\na 1\n# TYPE a counter\n",                   // second TYPE
      "# TYPE a counter\na{x=\"1} 1\n",                              // unterminated value
      "# TYPE a counter\na{x=\"\\t\"} 1\n",                          // bad escape
      "# TYPE a counter\na  1\n",                                    // two spaces
      "# TYPE a counter\na one\n",                                   // bad value
      "# TYPE a counter\na{1x=\"1\"} 1\n",                           // bad label name
      "# TYPE a counter\na{x=\"1\" y=\"2\"} 1\n",                    // no comma
      "# TYPE h histogram\nh_bucket 1\n",                            // bucket without le
      "# TYPE a counter\n\na 1\n",                                   // empty line
      "# TYPE a counters\na 1\n",                                    // unknown type
  })
  void refusesWhatTheFormatDoesNotAllow(String text) {
    assertThrows(IllegalArgumentException.class, () -> PrometheusText.parse(text));
  }
}
