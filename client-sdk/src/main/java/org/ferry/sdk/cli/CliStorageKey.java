package org.ferry.sdk.cli;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.SecureRandom;
import java.util.Optional;
import javax.crypto.SecretKeyFactory;
import javax.crypto.spec.PBEKeySpec;
import org.ferry.datadir.PrivateFiles;
import org.ferry.sdk.FerryException;

/**
 * Where the command line gets the key that encrypts the local store.
 *
 * <ul>
 *   <li>With {@code FERRY_PASSPHRASE} set when the store is made: the key is derived from the
 *       passphrase (PBKDF2-HMAC-SHA256, 600,000 rounds, salt in {@code store.salt}); the same
 *       passphrase is needed every time.
 *   <li>Otherwise: a random key in {@code store.key} beside the store (owner-only). That keeps
 *       the data safe from other users on the machine, not from someone who takes the disk.
 * </ul>
 */
final class CliStorageKey {
  static final String PASSPHRASE_ENV = "FERRY_PASSPHRASE";
  private static final String KEY_FILE = "store.key";
  private static final String SALT_FILE = "store.salt";
  private static final int ROUNDS = 600_000;

  private CliStorageKey() {}

  /** Whether a store (of either kind) exists in {@code dir}. */
  static boolean exists(Path dir) {
    return Files.exists(dir.resolve(KEY_FILE)) || Files.exists(dir.resolve(SALT_FILE));
  }

  /** Throws NOT_INITIALIZED unless a store (of either kind) exists in {@code dir}. */
  static void requireExists(Path dir) {
    if (!exists(dir)) {
      throw new FerryException(FerryException.Reason.NOT_INITIALIZED,
          "no Ferry client in " + dir + ": run init first");
    }
  }

  /** The key for an existing store. */
  static byte[] load(Path dir, Optional<String> passphrase) throws IOException {
    if (Files.exists(dir.resolve(KEY_FILE))) {
      byte[] key = Files.readAllBytes(dir.resolve(KEY_FILE));
      if (key.length != 32) {
        throw new FerryException(FerryException.Reason.STORAGE, dir.resolve(KEY_FILE) + " is damaged");
      }
      return key;
    }
    if (Files.exists(dir.resolve(SALT_FILE))) {
      String p = passphrase.orElseThrow(() -> new FerryException(FerryException.Reason.STORAGE,
          "this store is protected by a passphrase: set " + PASSPHRASE_ENV));
      return derive(p, Files.readAllBytes(dir.resolve(SALT_FILE)));
    }
    throw new FerryException(FerryException.Reason.NOT_INITIALIZED,
        "no Ferry client in " + dir + ": run init first");
  }

  /** Makes the key for a new store; the caller holds the directory's lock. */
  static byte[] create(Path dir, Optional<String> passphrase) throws IOException {
    SecureRandom random = new SecureRandom();
    if (passphrase.isPresent()) {
      byte[] salt = new byte[16];
      random.nextBytes(salt);
      writeOwnerOnly(dir.resolve(SALT_FILE), salt);
      return derive(passphrase.get(), salt);
    }
    byte[] key = new byte[32];
    random.nextBytes(key);
    writeOwnerOnly(dir.resolve(KEY_FILE), key);
    return key;
  }

  /** A line for the user saying what protects the store in {@code dir}. */
  static String protectionNote(Path dir) {
    return Files.exists(dir.resolve(KEY_FILE))
        ? "note: the store key is kept in " + dir.resolve(KEY_FILE) + "; set " + PASSPHRASE_ENV
            + " before init to protect the store with a passphrase instead"
        : "the store is protected by your passphrase; keep it safe, it cannot be recovered";
  }

  /** Removes the key or salt file, undoing {@link #create}. */
  static void delete(Path dir) throws IOException {
    Files.deleteIfExists(dir.resolve(KEY_FILE));
    Files.deleteIfExists(dir.resolve(SALT_FILE));
  }

  private static byte[] derive(String passphrase, byte[] salt) {
    try {
      PBEKeySpec spec = new PBEKeySpec(passphrase.toCharArray(), salt, ROUNDS, 256);
      try {
        return SecretKeyFactory.getInstance("PBKDF2WithHmacSHA256").generateSecret(spec).getEncoded();
      } finally {
        spec.clearPassword();
      }
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException("PBKDF2 unavailable", e);
    }
  }

  /** Never over an existing key or salt: that would make the store unreadable for good. */
  private static void writeOwnerOnly(Path file, byte[] content) throws IOException {
    PrivateFiles.createNew(file, content);
  }
}
