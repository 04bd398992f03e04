package org.ferry.it;

import com.google.common.net.InetAddresses;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import org.ferry.proto.HostPort;

/**
 * A proxy on loopback with its own name table, as Tor or a corporate proxy resolves names the
 * client's system cannot: SOCKS5 (RFC 1928, no authentication), or HTTP (CONNECT, and plain
 * requests with an absolute URI, one at a time, each with a Content-Length). A name that is not
 * in its table is refused, and so is every name that the system resolver would have to answer:
 * a client that looked a name up itself would fail, since the test names end in {@code .invalid}
 * (RFC 6761). It records every target it was asked for, as asked (name or address).
 */
final class NamingProxy implements AutoCloseable {
  enum Kind { SOCKS5, HTTP }

  /** One request: "domain NAME:PORT", "ipv4 A:PORT", "ipv6 [A]:PORT" (SOCKS5) or "http METHOD TARGET". */
  final List<String> requests = new CopyOnWriteArrayList<>();

  private final Kind kind;
  private final Map<String, InetAddress> names;
  private final ServerSocket listener;
  private final List<Socket> sockets = new CopyOnWriteArrayList<>();

  NamingProxy(Kind kind, Map<String, InetAddress> names) throws IOException {
    this.kind = kind;
    this.names = Map.copyOf(names);
    this.listener = new ServerSocket(0, 50, InetAddress.getLoopbackAddress());
    Thread t = new Thread(this::acceptLoop, "naming-proxy");
    t.setDaemon(true);
    t.start();
  }

  /** The proxy URI a client is given. */
  String uri() {
    return kind.name().toLowerCase(Locale.ROOT) + "://127.0.0.1:" + listener.getLocalPort();
  }

  private void acceptLoop() {
    while (!listener.isClosed()) {
      try {
        Socket s = listener.accept();
        sockets.add(s);
        Thread t = new Thread(() -> serve(s), "naming-proxy-conn");
        t.setDaemon(true);
        t.start();
      } catch (IOException e) {
        return;
      }
    }
  }

  private void serve(Socket client) {
    try (client) {
      if (kind == Kind.SOCKS5) {
        socks(client);
      } else {
        http(client);
      }
    } catch (IOException e) {
      // The client or target went away.
    }
  }

  /** Only names in the table, and IP literals: nothing here asks the system resolver. */
  private InetSocketAddress resolve(String host, int port) throws IOException {
    if (InetAddresses.isInetAddress(host)) {
      return new InetSocketAddress(InetAddresses.forString(host), port);
    }
    InetAddress a = names.get(host.toLowerCase(Locale.ROOT));
    if (a == null) {
      throw new IOException("unknown name " + host);
    }
    return new InetSocketAddress(a, port);
  }

  private Socket dial(String host, int port) throws IOException {
    Socket s = new Socket();
    sockets.add(s);
    s.connect(resolve(host, port), 5000);
    return s;
  }

  private void socks(Socket client) throws IOException {
    DataInputStream in = new DataInputStream(client.getInputStream());
    OutputStream out = client.getOutputStream();
    if (in.readUnsignedByte() != 5) {
      return;
    }
    in.readFully(new byte[in.readUnsignedByte()]);
    out.write(new byte[] {5, 0});
    byte[] head = new byte[4];
    in.readFully(head);
    String host;
    switch (head[3]) {
      case 1 -> {
        byte[] a = new byte[4];
        in.readFully(a);
        host = InetAddress.getByAddress(a).getHostAddress();
        requests.add("ipv4 " + host);
      }
      case 3 -> {
        byte[] n = new byte[in.readUnsignedByte()];
        in.readFully(n);
        host = new String(n, StandardCharsets.US_ASCII);
        requests.add("domain " + host);
      }
      case 4 -> {
        byte[] a = new byte[16];
        in.readFully(a);
        host = InetAddresses.toAddrString(InetAddress.getByAddress(a));
        requests.add("ipv6 " + host);
      }
      default -> {
        return;
      }
    }
    int port = in.readUnsignedShort();
    Socket target;
    try {
      target = dial(host, port);
    } catch (IOException e) {
      out.write(new byte[] {5, 4, 0, 1, 0, 0, 0, 0, 0, 0});
      return;
    }
    try (target) {
      out.write(new byte[] {5, 0, 0, 1, 0, 0, 0, 0, 0, 0});
      splice(client, target);
    }
  }

  private void http(Socket client) throws IOException {
    InputStream in = client.getInputStream();
    OutputStream out = client.getOutputStream();
    Socket target = null;
    try {
      while (true) {
        String head = readHead(in);
        if (head == null) {
          return;
        }
        String[] first = head.substring(0, head.indexOf("\r\n")).split(" ");
        requests.add("http " + first[0] + " " + first[1]);
        if (first[0].equals("CONNECT")) {
          HostPort hp = HostPort.parse(first[1]);
          try {
            target = dial(hp.host(), hp.port());
          } catch (IOException e) {
            out.write("HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n".getBytes(StandardCharsets.US_ASCII));
            return;
          }
          out.write("HTTP/1.1 200 Connection established\r\n\r\n".getBytes(StandardCharsets.US_ASCII));
          splice(client, target);
          return;
        }
        // GET/POST http://HOST:PORT/PATH: forwarded in origin form, the answer copied back.
        String uri = first[1];
        int slash = uri.indexOf('/', "http://".length());
        HostPort hp = HostPort.parse(uri.substring("http://".length(), slash));
        if (target == null) {
          target = dial(hp.host(), hp.port());
        }
        byte[] body = in.readNBytes(contentLength(head));
        OutputStream up = target.getOutputStream();
        up.write((first[0] + " " + uri.substring(slash) + " " + first[2] + head.substring(head.indexOf("\r\n")))
            .getBytes(StandardCharsets.ISO_8859_1));
        up.write(body);
        up.flush();
        String answer = readHead(target.getInputStream());
        if (answer == null) {
          return;
        }
        out.write(answer.getBytes(StandardCharsets.ISO_8859_1));
        out.write(target.getInputStream().readNBytes(contentLength(answer)));
        out.flush();
      }
    } finally {
      if (target != null) {
        target.close();
      }
    }
  }

  private static int contentLength(String head) {
    for (String line : head.split("\r\n")) {
      if (line.toLowerCase(Locale.ROOT).startsWith("content-length:")) {
        return Integer.parseInt(line.substring(line.indexOf(':') + 1).strip());
      }
    }
    return 0;
  }

  /** A message head up to and with its blank line, or null at the end of the stream. */
  private static String readHead(InputStream in) throws IOException {
    ByteArrayOutputStream b = new ByteArrayOutputStream();
    int state = 0;
    for (int c; (c = in.read()) >= 0; ) {
      b.write(c);
      state = (c == '\r' && (state == 0 || state == 2)) || (c == '\n' && (state == 1 || state == 3)) ? state + 1 : 0;
      if (state == 4) {
        return b.toString(StandardCharsets.ISO_8859_1);
      }
    }
    return null;
  }

  private static void splice(Socket a, Socket b) throws IOException {
    Thread back = new Thread(() -> {
      try {
        b.getInputStream().transferTo(a.getOutputStream());
      } catch (IOException ignored) {
        // Closed.
      } finally {
        try {
          a.shutdownOutput();
        } catch (IOException ignored) {
          // Closed.
        }
      }
    }, "naming-proxy-back");
    back.setDaemon(true);
    back.start();
    try {
      a.getInputStream().transferTo(b.getOutputStream());
      b.shutdownOutput();
    } catch (IOException ignored) {
      // Closed.
    }
    try {
      back.join(5000);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  @Override
  public void close() throws IOException {
    listener.close();
    for (Socket s : sockets) {
      s.close();
    }
  }
}
