#!/bin/bash
# Fetch the pinned base kernel (Debian linux-source-7.3) through a private apt
# configuration under $BUILD/apt, verify it, and extract it once into $BUILD/base.
# The system's apt sources are never touched.
set -euo pipefail

BUILD=${BUILD:?}
PKG=linux-source-7.3
VER=7.3.4-1~bpo13+1
SHA=703e369ddd4cce971452f5a593ee55df3a5c10c83caf0fa0df039633ed181ee3
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

base=$BUILD/base
[ -f "$base/.done" ] && exit 0

apt=$BUILD/apt
mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$apt/etc" "$apt/debs"
cat > "$apt/etc/sources.list" <<SRC
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $MIRROR trixie-backports main
SRC
opts=(-o Dir::Etc::SourceList="$apt/etc/sources.list"
      -o Dir::Etc::SourceParts=/dev/null
      -o Dir::State::Lists="$apt/lists"
      -o Dir::Cache="$apt/cache"
      -o Dir::State::status=/var/lib/dpkg/status
      -o APT::Get::List-Cleanup=0
      -o Debug::NoLocking=1
      -o APT::Sandbox::User=root)

deb=$apt/debs/${PKG}_${VER//:/%3a}_all.deb
if [ ! -f "$deb" ]; then
	echo "fetch: $PKG $VER from trixie-backports"
	apt-get "${opts[@]}" -qq update
	if ! (cd "$apt/debs" && apt-get "${opts[@]}" -qq download "$PKG=$VER"); then
		echo "fetch: FAILED: $PKG version $VER not available from $MIRROR trixie-backports" >&2
		exit 1
	fi
	deb=$(ls "$apt/debs"/${PKG}_*.deb | head -n1)
fi
got=$(sha256sum "$deb" | cut -d' ' -f1)
if [ "$got" != "$SHA" ]; then
	echo "fetch: FAILED: sha256 mismatch for $PKG $VER" >&2
	echo "  expected $SHA" >&2
	echo "  got      $got ($deb)" >&2
	exit 1
fi

echo "fetch: extracting $PKG $VER"
tmp=$BUILD/base.tmp
rm -rf "$tmp" && mkdir -p "$tmp"
dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp" --wildcards './usr/src/linux-source-7.3.tar.*'
tarball=$(ls "$tmp"/usr/src/linux-source-7.3.tar.*)
mkdir -p "$tmp/src"
tar -xf "$tarball" -C "$tmp/src" --strip-components=1
rm -rf "$base"
mv "$tmp/src" "$base"
rm -rf "$tmp"
touch "$base/.done"
echo "fetch: base tree at $base"
