package org.ferry.server.internal.federation;

import java.io.DataInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

/** A minimal SOCKS5 proxy (RFC 1928: no authentication, CONNECT to an IPv4 address) for tests. */
final class Socks5Proxy implements AutoCloseable {
  private final ServerSocket listener;
  private final Thread acceptor;
  /** The ports it was asked to connect to. */
  final List<Integer> targets = new CopyOnWriteArrayList<>();
  private final List<Socket> open = new CopyOnWriteArrayList<>();

  Socks5Proxy() throws IOException {
    listener = new ServerSocket(0, 50, InetAddress.getLoopbackAddress());
    acceptor = new Thread(this::accept, "test-socks5");
    acceptor.setDaemon(true);
    acceptor.start();
  }

  int port() {
    return listener.getLocalPort();
  }

  private void accept() {
    while (!listener.isClosed()) {
      try {
        Socket client = listener.accept();
        open.add(client);
        Thread t = new Thread(() -> serve(client), "test-socks5-conn");
        t.setDaemon(true);
        t.start();
      } catch (IOException e) {
        return;
      }
    }
  }

  private void serve(Socket client) {
    try {
      DataInputStream in = new DataInputStream(client.getInputStream());
      OutputStream out = client.getOutputStream();
      in.readUnsignedByte();
      in.skipNBytes(in.readUnsignedByte());
      out.write(new byte[] {5, 0});
      in.readUnsignedByte();
      in.readUnsignedByte();
      in.readUnsignedByte();
      if (in.readUnsignedByte() != 1) {
        client.close();
        return;
      }
      byte[] ip = new byte[4];
      in.readFully(ip);
      int port = in.readUnsignedShort();
      targets.add(port);
      Socket upstream = new Socket(InetAddress.getByAddress(ip), port);
      open.add(upstream);
      out.write(new byte[] {5, 0, 0, 1, 0, 0, 0, 0, 0, 0});
      out.flush();
      Thread back = new Thread(() -> pipe(upstream, client), "test-socks5-back");
      back.setDaemon(true);
      back.start();
      pipe(client, upstream);
    } catch (IOException e) {
      // the test closed it, or the peer went away
    }
  }

  private static void pipe(Socket from, Socket to) {
    try (InputStream in = from.getInputStream(); OutputStream out = to.getOutputStream()) {
      in.transferTo(out);
    } catch (IOException e) {
      // closed
    }
  }

  @Override
  public void close() throws IOException {
    listener.close();
    for (Socket s : open) {
      s.close();
    }
  }
}
