/**
 * Data directories: the lock every Ferry process takes on its own before touching it
 * ({@link org.ferry.datadir.DataDirectoryLock}), and owner-only files written whole
 * ({@link org.ferry.datadir.PrivateFiles}).
 */
package org.ferry.datadir;
