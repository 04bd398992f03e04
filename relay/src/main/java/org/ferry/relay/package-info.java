/**
 * The relay: a stateless bridge that censored clients reach over obfuscated carriers
 * (WebSocket over HTTPS, HTTP polling, obfs4), piping bytes to an allowed upstream Ferry
 * server. Also embedded by the server to accept carriers directly.
 *
 * <p>Not built yet: this module holds the place the carriers will live in, so that the
 * dependency direction {@code proto <- relay <- server} is fixed from the start.
 */
package org.ferry.relay;
