/** The Prometheus metrics listener of {@code ferry server} and {@code ferry relay}. */
package org.ferry.ops.metrics;
