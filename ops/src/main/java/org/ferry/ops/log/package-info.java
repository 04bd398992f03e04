/** One log line per event for {@code ferry server} and {@code ferry relay}. */
package org.ferry.ops.log;
