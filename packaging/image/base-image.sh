#!/usr/bin/env bash
# Makes the container image's base, Debian 12 (bookworm) with its OpenJDK 17 runtime and
# obfs4proxy (the relay's obfs4 carrier), as a `docker save` tar that Jib takes as
# `tar://PATH`, from Debian's packages alone: CI reaches no container registry (so no
# eclipse-temurin:17-jre), but it reaches Debian's mirror.
#
#   packaging/image/base-image.sh OUT.tar      (as root; needs debootstrap; about a minute)
#
# The base holds the user ferry (uid and gid 10001) and its state directory /var/lib/ferry
# (0700), and /etc/ferry for the config. FERRY_DEBIAN_MIRROR overrides the mirror.
# Copyright the Ferry developers. AGPL-3.0-or-later.
set -euo pipefail

OUT="${1:?usage: base-image.sh OUT.tar}"
MIRROR="${FERRY_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
if [[ $(id -u) -ne 0 ]]; then
  echo "base-image.sh: must run as root (debootstrap makes files of other owners)" >&2
  exit 2
fi
command -v debootstrap >/dev/null || [[ -x /usr/sbin/debootstrap ]] || {
  echo "base-image.sh: debootstrap is missing: apt-get install debootstrap" >&2
  exit 2
}

WORK="$(mktemp -d "${TMPDIR:-/tmp}/ferry-base.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
ROOTFS="$WORK/rootfs"

/usr/sbin/debootstrap --variant=minbase --include=openjdk-17-jre-headless,obfs4proxy \
  bookworm "$ROOTFS" "$MIRROR" > "$WORK/debootstrap.log" 2>&1 || {
  tail -20 "$WORK/debootstrap.log" >&2
  echo "base-image.sh: debootstrap failed (log above)" >&2
  exit 1
}

# What a runtime image does not need: package caches and lists, docs, device nodes (the
# container runtime mounts /dev, /proc and /sys).
rm -rf "$ROOTFS"/var/cache/apt/* "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/usr/share/doc/* \
  "$ROOTFS"/usr/share/man/* "$ROOTFS"/usr/share/info/* "$ROOTFS"/var/log/* \
  "$ROOTFS"/dev/* "$ROOTFS"/proc/* "$ROOTFS"/sys/* "$ROOTFS"/tmp/* "$ROOTFS"/var/tmp/*
echo "ferry:x:10001:10001:Ferry:/var/lib/ferry:/usr/sbin/nologin" >> "$ROOTFS/etc/passwd"
echo "ferry:x:10001:" >> "$ROOTFS/etc/group"
echo "ferry:!:19000::::::" >> "$ROOTFS/etc/shadow"
install -d -m 0700 -o 10001 -g 10001 "$ROOTFS/var/lib/ferry"
install -d -m 0755 "$ROOTFS/etc/ferry"
chmod 1777 "$ROOTFS/tmp"

# One layer, in a fixed order and with fixed times; then the image config and manifest of
# `docker save`'s format.
tar --numeric-owner --sort=name --mtime=@0 --xattrs -C "$ROOTFS" -cf "$WORK/layer.tar" .
DIFF_ID="sha256:$(sha256sum "$WORK/layer.tar" | cut -d' ' -f1)"
cat > "$WORK/config.json" <<JSON
{"architecture":"amd64","os":"linux","created":"1970-01-01T00:00:00Z",
 "config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin","LANG=C.UTF-8"]},
 "rootfs":{"type":"layers","diff_ids":["$DIFF_ID"]}}
JSON
cat > "$WORK/manifest.json" <<JSON
[{"Config":"config.json","RepoTags":["ferry-base:bookworm-jre17"],"Layers":["layer.tar"]}]
JSON
tar --numeric-owner --mtime=@0 -C "$WORK" -cf "$OUT" manifest.json config.json layer.tar
echo "base-image.sh: wrote $OUT ($(du -h "$OUT" | cut -f1)), Debian bookworm with $(
  grep -o 'openjdk-17-jre-headless[^ ]*' "$WORK/debootstrap.log" | head -1 || echo OpenJDK 17)" >&2
