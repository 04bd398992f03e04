/**
 * The TOML config file behind {@code ferry server} and {@code ferry relay}: one key per flag,
 * flags win, one-line errors naming the key, the file and the line.
 */
package org.ferry.ops.config;
