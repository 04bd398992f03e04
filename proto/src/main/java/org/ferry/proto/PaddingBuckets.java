package org.ferry.proto;

import java.util.List;

/**
 * The only sizes an envelope body may have on the wire: 1, 4, 16 and 64 KiB. Clients pad
 * up to the smallest bucket that fits; servers refuse anything else, so that sizes reveal
 * as little as possible about content.
 */
public final class PaddingBuckets {
  public static final List<Integer> SIZES = List.of(1024, 4096, 16384, 65536);
  public static final int LARGEST = 65536;

  private PaddingBuckets() {}

  public static boolean isBucketSize(int length) {
    return SIZES.contains(length);
  }

  /** The smallest bucket that holds {@code length} bytes; throws if none does. */
  public static int bucketFor(int length) {
    for (int size : SIZES) {
      if (length <= size) {
        return size;
      }
    }
    throw new IllegalArgumentException(
        "content too large for one envelope: " + length + " > " + LARGEST + " bytes");
  }
}
