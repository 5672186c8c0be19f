#!/bin/bash
# Install the host tools the harness needs (Debian packages), when missing.
set -euo pipefail
pkgs=(build-essential bc bison flex libelf-dev libssl-dev cpio kmod dwarves ccache
      qemu-system-x86 busybox-static numactl libnuma-dev gnuplot-nox file patch git rsync
      python3 python3-ply python3-git)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
mkdir -p "$BUILD"
if [ "$(id -u)" -ne 0 ]; then
	echo "deps: missing Debian packages: ${missing[*]}" >&2
	echo "deps: run as root, or: sudo apt-get install ${missing[*]}" >&2
	exit 1
fi
echo "deps: installing ${missing[*]}"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" > "$BUILD/apt-install.log" 2>&1 ||
	{ tail -n 20 "$BUILD/apt-install.log" >&2; exit 1; }
