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
import org.ferry.sdk.internal.crypto.AesGcm;

/**
 * Where the command line gets the key that encrypts the local store.
 *
 * <ul>
 *   <li>With {@code FERRY_PASSPHRASE} set when the store is made: the key is derived from the
 *       passphrase (PBKDF2-HMAC-SHA256, 600,000 rounds, salt in {@code store.salt}); the same
 *       passphrase is needed every time.
 *   <li>Otherwise: a random key in {@code store.key} beside the store (owner-only). That keeps
 *       the data safe from other users on the machine, not from someone who takes the disk.
 *   <li>After {@code ferry client passphrase set}: that random key, encrypted (AES-256-GCM) under
 *       a key derived from the passphrase as above, in {@code store.wrapped} (16-byte salt, then
 *       the sealed key); {@code passphrase remove} puts it back into {@code store.key}. The
 *       store's own key does not change, so neither needs the store rewritten.
 * </ul>
 */
final class CliStorageKey {
  static final String PASSPHRASE_ENV = "FERRY_PASSPHRASE";
  private static final String KEY_FILE = "store.key";
  private static final String SALT_FILE = "store.salt";
  private static final String WRAPPED_FILE = "store.wrapped";
  private static final byte[] WRAP_AAD = "ferry.cli.store-key".getBytes(java.nio.charset.StandardCharsets.US_ASCII);
  private static final int ROUNDS = 600_000;

  private CliStorageKey() {}

  /** Whether a store (of either kind) exists in {@code dir}. */
  static boolean exists(Path dir) {
    return Files.exists(dir.resolve(KEY_FILE)) || Files.exists(dir.resolve(SALT_FILE))
        || Files.exists(dir.resolve(WRAPPED_FILE));
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
    if (Files.exists(dir.resolve(WRAPPED_FILE))) {
      byte[] wrapped = Files.readAllBytes(dir.resolve(WRAPPED_FILE));
      if (wrapped.length <= 16) {
        throw new FerryException(FerryException.Reason.STORAGE, dir.resolve(WRAPPED_FILE) + " is damaged");
      }
      byte[] salt = java.util.Arrays.copyOf(wrapped, 16);
      byte[] sealed = java.util.Arrays.copyOfRange(wrapped, 16, wrapped.length);
      try {
        return AesGcm.decrypt(derive(requirePassphrase(passphrase), salt), sealed, WRAP_AAD);
      } catch (javax.crypto.AEADBadTagException e) {
        throw new FerryException(FerryException.Reason.STORAGE,
            "wrong passphrase (" + PASSPHRASE_ENV + ") for this store", e);
      }
    }
    if (Files.exists(dir.resolve(SALT_FILE))) {
      return derive(requirePassphrase(passphrase), Files.readAllBytes(dir.resolve(SALT_FILE)));
    }
    throw new FerryException(FerryException.Reason.NOT_INITIALIZED,
        "no Ferry client in " + dir + ": run init first");
  }

  private static String requirePassphrase(Optional<String> passphrase) {
    return passphrase.orElseThrow(() -> new FerryException(FerryException.Reason.STORAGE,
        "this store is protected by a passphrase: set " + PASSPHRASE_ENV));
  }

  /** Whether the store in {@code dir} is opened with a passphrase (not with its key file). */
  static boolean usesPassphrase(Path dir) {
    return !Files.exists(dir.resolve(KEY_FILE))
        && (Files.exists(dir.resolve(WRAPPED_FILE)) || Files.exists(dir.resolve(SALT_FILE)));
  }

  /**
   * A warning when a passphrase is given for a store that its key file opens: the passphrase
   * is not used, and the user should know rather than believe the store is protected by it.
   */
  static Optional<String> ignoredPassphraseNote(Path dir, Optional<String> passphrase) {
    if (passphrase.isEmpty() || !Files.exists(dir.resolve(KEY_FILE))) {
      return Optional.empty();
    }
    return Optional.of("warning: " + PASSPHRASE_ENV + " is set, but this store is opened with its key file "
        + dir.resolve(KEY_FILE) + ": the passphrase is not used. Run 'ferry client passphrase set' to "
        + "protect the store with it instead.");
  }

  /**
   * Protects the store's key, {@code key} (checked by the caller: it opens the store), with
   * {@code passphrase} instead of the key file, which is then removed. The caller holds the
   * directory's lock.
   */
  static void protectWithPassphrase(Path dir, byte[] key, String passphrase) throws IOException {
    if (passphrase.isEmpty()) {
      throw new IllegalArgumentException("the passphrase is empty");
    }
    byte[] salt = new byte[16];
    new SecureRandom().nextBytes(salt);
    byte[] sealed = AesGcm.encrypt(derive(passphrase, salt), key, WRAP_AAD);
    byte[] wrapped = java.nio.ByteBuffer.allocate(salt.length + sealed.length).put(salt).put(sealed).array();
    // While the key file exists it is what opens the store: anything else is left over from
    // a switch that stopped half-way, and is replaced.
    Files.deleteIfExists(dir.resolve(WRAPPED_FILE));
    Files.deleteIfExists(dir.resolve(SALT_FILE));
    writeOwnerOnly(dir.resolve(WRAPPED_FILE), wrapped);
    removeKeyFile(dir);
  }

  /**
   * Keeps the store's key, {@code key} (checked by the caller), in the key file again and
   * removes what the passphrase opened. The caller holds the directory's lock.
   */
  static void keepInKeyFile(Path dir, byte[] key) throws IOException {
    if (!Files.exists(dir.resolve(KEY_FILE))) {
      writeOwnerOnly(dir.resolve(KEY_FILE), key);
    }
    Files.deleteIfExists(dir.resolve(WRAPPED_FILE));
    Files.deleteIfExists(dir.resolve(SALT_FILE));
  }

  /** Overwrites the key file before removing it (on flash storage old blocks may remain). */
  private static void removeKeyFile(Path dir) throws IOException {
    Path file = dir.resolve(KEY_FILE);
    try (java.nio.channels.FileChannel ch = java.nio.channels.FileChannel.open(file, java.nio.file.StandardOpenOption.WRITE)) {
      ch.write(java.nio.ByteBuffer.allocate((int) ch.size()));
      ch.force(true);
    }
    Files.delete(file);
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
            + " and run 'ferry client passphrase set' to protect the store with a passphrase instead"
        : "the store is protected by your passphrase; keep it safe, it cannot be recovered";
  }

  /** Removes the key or salt file, undoing {@link #create}. */
  static void delete(Path dir) throws IOException {
    Files.deleteIfExists(dir.resolve(KEY_FILE));
    Files.deleteIfExists(dir.resolve(SALT_FILE));
    Files.deleteIfExists(dir.resolve(WRAPPED_FILE));
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
