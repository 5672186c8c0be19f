#!/bin/bash
# Build the base initramfs: busybox, numactl, our selftests (/tests), the
# upstream gate selftests (/gate), the shared libraries they need, and /init.
# Per-boot files (/plan, /boot-name) are appended by vm.sh as a second archive.
set -euo pipefail
BUILD=${BUILD:?}
TOP=${TOP:?}
R=$BUILD/initramfs
rm -rf "$R"
mkdir -p "$R"/{bin,sbin,dev,proc,sys,tmp,tests,gate,lib,lib64,usr/lib}

cp /bin/busybox "$R/bin/busybox"
cp "$(command -v numactl)" "$R/bin/"
cp "$TOP/tests/init" "$R/init"
find "$TOP/tests" -maxdepth 1 -name '*.sh' -exec cp {} "$R/tests/" \;
cp "$BUILD"/selftests/bin/* "$R/tests/" 2>/dev/null || true
cp "$BUILD"/gate/bin/* "$R/gate/"

# Shared libraries, copied to the same paths as on the host.
for f in "$R"/bin/numactl "$R"/tests/* "$R"/gate/*; do
	[ -f "$f" ] && file -L "$f" | grep -q 'dynamically linked' || continue
	ldd "$f" | grep -o '/[^ ]*' | while read -r lib; do
		mkdir -p "$R$(dirname "$lib")"
		cp -L "$lib" "$R$lib"
	done
done

(cd "$R" && find . | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0) | gzip -1 > "$BUILD/initramfs.cpio.gz"
