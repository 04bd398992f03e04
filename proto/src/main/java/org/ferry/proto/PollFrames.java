package org.ferry.proto;

/**
 * The HTTP polling carrier's bodies. Every exchange is one {@code POST} to the bridge's secret
 * path; the client sends one request at a time and resends the same one (same sequence number)
 * if it got no answer, which the relay answers from its copy of the last response.
 *
 * <pre>
 * request:  session id (16 random bytes) | seq (8, big-endian, from 0) | flags (1)
 *           | hold (2, big-endian, milliseconds the relay may wait for data) | bytes upstream
 * response: flags (1) | bytes downstream
 * </pre>
 *
 * Flag {@link #CLOSE}: in a request, the client is done; in a response, the server side has
 * closed and everything it sent is in this or earlier responses. A request for a session the
 * relay does not know, other than with seq 0, gets the decoy page: the client then redials.
 */
public final class PollFrames {
  public static final int SESSION_ID_LENGTH = 16;
  public static final int REQUEST_HEADER = SESSION_ID_LENGTH + 8 + 1 + 2;
  public static final int RESPONSE_HEADER = 1;
  public static final int CLOSE = 1;
  /** Most bytes one request or response carries. */
  public static final int MAX_PAYLOAD = 256 * 1024;
  /** Longest hold a relay grants. */
  public static final int MAX_HOLD_MILLIS = 2_000;
  public static final String CONTENT_TYPE = "application/octet-stream";

  private PollFrames() {}
}
