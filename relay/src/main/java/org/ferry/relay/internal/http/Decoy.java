package org.ferry.relay.internal.http;

import io.netty.buffer.Unpooled;
import io.netty.handler.codec.http.DefaultFullHttpResponse;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpHeaderValues;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.handler.codec.http.HttpVersion;
import java.nio.charset.StandardCharsets;
import java.time.Clock;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;

/**
 * What anyone without the bridge secret sees: the pages of a freshly installed nginx. A prober
 * learns that a web server runs here and nothing more.
 */
public final class Decoy {
  static final String WELCOME = """
      <!DOCTYPE html>
      <html>
      <head>
      <title>Welcome to nginx!</title>
      <style>
      html { color-scheme: light dark; }
      body { width: 35em; margin: 0 auto;
      font-family: Tahoma, Verdana, Arial, sans-serif; }
      </style>
      </head>
      <body>
      <h1>Welcome to nginx!</h1>
      <p>If you see this page, the nginx web server is successfully installed and
      working. Further configuration is required.</p>

      <p>For online documentation and support please refer to
      <a href="http://nginx.org/">nginx.org</a>.<br/>
      Commercial support is available at
      <a href="http://nginx.com/">nginx.com</a>.</p>

      <p><em>Thank you for using nginx.</em></p>
      </body>
      </html>
      """;

  private final Clock clock;

  public Decoy(Clock clock) {
    this.clock = clock;
  }

  /** The body of an nginx error page for {@code status}. */
  public static String errorPage(HttpResponseStatus status) {
    String title = status.code() + " " + status.reasonPhrase();
    return "<html>\r\n<head><title>" + title + "</title></head>\r\n<body>\r\n<center><h1>" + title
        + "</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n";
  }

  /** Every page body a decoy can show, for tests that check a prober saw nothing else. */
  public static java.util.Set<String> bodies() {
    return java.util.Set.of(WELCOME,
        errorPage(HttpResponseStatus.BAD_REQUEST),
        errorPage(HttpResponseStatus.NOT_FOUND),
        errorPage(new HttpResponseStatus(405, "Not Allowed")),
        errorPage(HttpResponseStatus.BAD_GATEWAY),
        "");
  }

  /** The home page. */
  public FullHttpResponse welcome(boolean head) {
    return page(HttpResponseStatus.OK, WELCOME, head);
  }

  /** An error page, as nginx words it. */
  public FullHttpResponse error(HttpResponseStatus status, boolean head) {
    return page(status, errorPage(status), head);
  }

  private FullHttpResponse page(HttpResponseStatus status, String html, boolean head) {
    byte[] body = html.getBytes(StandardCharsets.US_ASCII);
    FullHttpResponse r = new DefaultFullHttpResponse(HttpVersion.HTTP_1_1, status,
        head ? Unpooled.EMPTY_BUFFER : Unpooled.wrappedBuffer(body));
    r.headers()
        .set("Server", "nginx")
        .set("Date", DateTimeFormatter.RFC_1123_DATE_TIME.format(clock.instant().atZone(ZoneOffset.UTC)))
        .set("Content-Type", HttpHeaderValues.TEXT_HTML)
        .setInt("Content-Length", body.length);
    return r;
  }
}
