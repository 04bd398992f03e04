#!/usr/bin/env python3
"""Checks the container image tar that Jib writes (dist/target/ferry-image.tar, `docker save`
format) without a container engine: the config (entrypoint, command, user, ports, volume), the
layers' integrity (each diff_id is the sha256 of the layer uncompressed) and what they hold (the
launcher, every jar the archive's launcher needs, the config, a Java 17 runtime, obfs4proxy, the
ferry user owning its state directory). With --rootfs DIR it also unpacks the layers there, in
order, for scripts/check-packaging.sh to start the image's entrypoint in a chroot.

    scripts/check-image.py IMAGE.tar [--rootfs DIR]

Prints one line per check; exits 1 on the first that fails.
Copyright the Ferry developers. AGPL-3.0-or-later.
"""
import gzip
import hashlib
import io
import json
import os
import sys
import tarfile


def fail(msg):
    print(f"check-image: FAILED: {msg}", file=sys.stderr)
    sys.exit(1)


def ok(msg):
    print(f"check-image: ok: {msg}")


def main(argv):
    if len(argv) not in (2, 4) or (len(argv) == 4 and argv[2] != "--rootfs"):
        print(__doc__.strip().splitlines()[-3], file=sys.stderr)
        return 2
    image = tarfile.open(argv[1])
    rootfs = argv[3] if len(argv) == 4 else None

    manifest = json.load(image.extractfile("manifest.json"))
    if len(manifest) != 1:
        fail(f"manifest.json lists {len(manifest)} images, expected 1")
    entry = manifest[0]
    config = json.load(image.extractfile(entry["Config"]))
    c = config["config"]

    expect = {
        "Entrypoint": ["/opt/ferry/ferry"],
        "Cmd": ["server", "--config", "/etc/ferry/server.toml"],
        "User": "10001:10001",
        "WorkingDir": "/var/lib/ferry",
    }
    for key, want in expect.items():
        if c.get(key) != want:
            fail(f"config {key} is {c.get(key)!r}, expected {want!r}")
    ports = set(c.get("ExposedPorts", {}))
    for port in ("7443/tcp", "8443/tcp", "8444/tcp"):
        if port not in ports:
            fail(f"config exposes {sorted(ports)}, missing {port}")
    if "/var/lib/ferry" not in c.get("Volumes", {}):
        fail(f"config volumes {sorted(c.get('Volumes', {}))} lack /var/lib/ferry")
    if "FERRY_LIB=/opt/ferry/libs" not in c.get("Env", []):
        fail(f"config env {c.get('Env')} lacks FERRY_LIB=/opt/ferry/libs")
    ok(f"config: entrypoint {c['Entrypoint']} {c['Cmd']}, user {c['User']}, ports {sorted(ports)}")

    diff_ids = config["rootfs"]["diff_ids"]
    layers = entry["Layers"]
    if len(diff_ids) != len(layers):
        fail(f"{len(layers)} layers but {len(diff_ids)} diff_ids")

    files = {}  # path -> TarInfo, later layers over earlier ones
    passwd = ""
    for name, diff_id in zip(layers, diff_ids):
        blob = image.extractfile(name).read()
        raw = gzip.decompress(blob) if blob[:2] == b"\x1f\x8b" else blob
        digest = "sha256:" + hashlib.sha256(raw).hexdigest()
        if digest != diff_id:
            fail(f"layer {name}: sha256 {digest} is not its diff_id {diff_id}")
        with tarfile.open(fileobj=io.BytesIO(raw)) as layer:
            for m in layer.getmembers():
                path = os.path.normpath("/" + m.name)
                files[path] = m
                if path == "/etc/passwd" and m.isfile():
                    passwd = layer.extractfile(m).read().decode()
            if rootfs:
                # Layers hold no whiteouts here (one base layer, then Jib's additions); the
                # base is ours (packaging/image/base-image.sh), so its links are trusted.
                if hasattr(tarfile, "fully_trusted_filter"):
                    layer.extractall(rootfs, numeric_owner=True, filter="fully_trusted")
                else:
                    layer.extractall(rootfs, numeric_owner=True)
    ok(f"{len(layers)} layers, each matching its diff_id; {len(files)} paths")

    def need(path, mode=None, uid=None):
        m = files.get(path)
        if m is None:
            fail(f"the image has no {path}")
        if mode is not None and (m.mode & 0o777) != mode:
            fail(f"{path} has mode {oct(m.mode & 0o777)}, expected {oct(mode)}")
        if uid is not None and m.uid != uid:
            fail(f"{path} belongs to uid {m.uid}, expected {uid}")
        return m

    need("/opt/ferry/ferry", mode=0o755)
    need("/etc/ferry/server.toml")
    need("/var/lib/ferry", mode=0o700, uid=10001)
    need("/usr/lib/jvm/java-17-openjdk-amd64/bin/java")
    need("/usr/bin/obfs4proxy")
    libs = sorted(os.path.basename(p) for p in files if p.startswith("/opt/ferry/libs/"))
    for prefix in ("ferry-server-", "ferry-relay-", "ferry-client-sdk-", "ferry-proto-",
                   "ferry-ops-", "rocksdbjni-", "libsignal-client-", "grpc-netty-"):
        if not any(lib.startswith(prefix) and lib.endswith(".jar") for lib in libs):
            fail(f"/opt/ferry/libs has no {prefix}*.jar (it has {len(libs)} files)")
    ok(f"layers hold the launcher, /etc/ferry/server.toml, Java 17, obfs4proxy and {len(libs)} jars")

    if "ferry:x:10001:10001:" not in passwd:
        fail("/etc/passwd has no ferry user with uid 10001")
    ok("user ferry (10001) owns /var/lib/ferry (0700)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
