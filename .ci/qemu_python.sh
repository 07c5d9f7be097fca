#!/usr/bin/env bash
# A foreign-architecture CPython for tests/test_platforms.py: Debian's own
# python3.11 for ARCH (arm64 | armhf) unpacked into a sysroot and run under
# qemu-user with -L (no binfmt needed).  Built once into /opt/plotfleet-ARCH;
# a complete build has .ok and bin/python3 (the wrapper used as a host's
# ansible_python_interpreter).
set -euo pipefail
ARCH=${1:?usage: qemu_python.sh arm64|armhf}
case "$ARCH" in
  arm64) QEMU=qemu-aarch64-static MACHINE=aarch64 ;;
  armhf) QEMU=qemu-arm-static MACHINE=armv7l ;;
  *) echo "unknown arch $ARCH" >&2; exit 2 ;;
esac
DEST=/opt/plotfleet-$ARCH
[ -f "$DEST/.ok" ] && exit 0
command -v $QEMU >/dev/null || { echo "$QEMU missing (apt-get install qemu-user-static)" >&2; exit 1; }

# the interpreter and the libraries its stdlib modules link (psutil needs only libc)
PKGS="python3.11-minimal libpython3.11-minimal libpython3.11-stdlib libc6 libgcc-s1
      zlib1g libexpat1 libffi8 libssl3 libbz2-1.0 liblzma5 libuuid1 libcrypt1
      libsqlite3-0 libtinfo6 libncursesw6 libreadline8 libtirpc3 libnsl2 libdb5.3"

dpkg --print-foreign-architectures | grep -qx "$ARCH" || dpkg --add-architecture "$ARCH"
# a mirror mid-sync fails one index now and then: try again, then go on with
# what is there (the download below fails plainly if a package is missing)
for _ in 1 2 3; do apt-get update -qq && break; sleep 5; done || true
work=$(mktemp -d "/opt/.plotfleet-$ARCH.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/debs" "$work/sysroot" "$work/bin"
chmod 755 "$work" "$work/debs"    # apt-get download fetches as _apt
(cd "$work/debs" && apt-get download -qq $(for p in $PKGS; do printf '%s:%s ' "$p" "$ARCH"; done))
for deb in "$work"/debs/*.deb; do dpkg-deb -x "$deb" "$work/sysroot"; done
rm -rf "$work/debs"
cat > "$work/bin/python3" <<WRAP
#!/bin/sh
exec $QEMU -L $DEST/sysroot $DEST/sysroot/usr/bin/python3.11 "\$@"
WRAP
chmod +x "$work/bin/python3"
rm -rf "$DEST"
mv "$work" "$DEST"
trap - EXIT
"$DEST/bin/python3" -S -c "import platform, json, hashlib, subprocess; assert platform.machine() == '$MACHINE', platform.machine()"
touch "$DEST/.ok"
echo "$ARCH python ready: $DEST/bin/python3"
