#!/bin/bash
# Incremental builds into $BUILD (never from scratch when only the overlay changed).
#   build.sh kernel      configure (once per fragment change) and build bzImage
#   build.sh selftests   our KVM selftests from the tree, the gate's from the base
set -euo pipefail
BUILD=${BUILD:?}
TOP=${TOP:?}
# A profile (PROFILE=bench) builds the same tree with its own config into obj-<profile>.
O=$BUILD/obj${PROFILE:+-$PROFILE}
JOBS=${JOBS:-$(nproc)}
export CCACHE_DIR=${CCACHE_DIR:-$HOME/.cache/ccache}
# Relative paths in the cache key: a fresh clone elsewhere still hits.
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$BUILD}

# Upstream 7.3's own tests, built unmodified from the pristine base: the regression gate.
GATE=(guest_memfd_test set_memory_region_test pre_fault_memory_test
      x86/private_mem_conversions_test x86/private_mem_kvm_exits_test)

kernel() {
	"$TOP/scripts/kconfig.sh"
	ccache -M 8G > /dev/null
	echo "build: kernel (log: $BUILD/kbuild${PROFILE:+-$PROFILE}.log)"
	if ! make -C "$BUILD/linux" O="$O" CC="ccache gcc" -j"$JOBS" bzImage > "$BUILD/kbuild${PROFILE:+-$PROFILE}.log" 2>&1; then
		grep -E 'error|Error' "$BUILD/kbuild${PROFILE:+-$PROFILE}.log" | head -n 40 >&2
		echo "build: kernel build FAILED (see $BUILD/kbuild${PROFILE:+-$PROFILE}.log)" >&2
		exit 1
	fi
	make -s -C "$BUILD/linux" O="$O" headers_install INSTALL_HDR_PATH="$O/hdr" > /dev/null
}

# build_set SRC HDR OUT TEST...
build_set() {
	local src=$1 hdr=$2 out=$3 t
	shift 3
	local targets=()
	for t in "$@"; do targets+=("$out/$t"); done
	mkdir -p "$out/bin"
	if ! make -C "$src/tools/testing/selftests/kvm" OUTPUT="$out" \
		KHDR_INCLUDES="-isystem $hdr/include" CC="ccache gcc" -j"$JOBS" \
		"${targets[@]}" > "$out/build.log" 2>&1; then
		grep -E 'error|Error' "$out/build.log" | head -n 40 >&2
		echo "build: selftests FAILED in $src (see $out/build.log)" >&2
		exit 1
	fi
	for t in "$@"; do cp "$out/$t" "$out/bin/"; done
}

selftests() {
	local ours=()
	# Headers of the pristine base, for the gate.
	if [ ! -f "$BUILD/gate/hdr/include/linux/kvm.h" ]; then
		make -s -C "$BUILD/base" O="$BUILD/gate/hdr-obj" ARCH=x86 headers_install \
			INSTALL_HDR_PATH="$BUILD/gate/hdr" > /dev/null
	fi
	echo "build: gate selftests (pristine 7.3)"
	build_set "$BUILD/base" "$BUILD/gate/hdr" "$BUILD/gate" "${GATE[@]}"
	mapfile -t ours < <(sed -e 's/[[:space:]]*#.*//' -e '/^$/d' "$TOP/tests/selftests")
	echo "build: our selftests (${#ours[@]})"
	rm -rf "$BUILD/selftests/bin"
	build_set "$BUILD/linux" "$O/hdr" "$BUILD/selftests" "${ours[@]}"
}

"$1"
