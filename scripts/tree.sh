#!/bin/bash
# The scratch kernel tree: base + overlay, kept in a git repository at $BUILD/linux.
#
#   tree.sh tree          create the tree, or bring it up to date with linux/
#   tree.sh export        write the tree's changes against base back into linux/
#   tree.sh export-check  fail, listing paths, if the tree holds what linux/ does not
#
# The overlay commit is built in a private index and checked out on top of the
# previous one, so only files whose content changed get a new mtime: kbuild then
# rebuilds exactly what the overlay touched.
set -euo pipefail

BUILD=${BUILD:?}
TOP=${TOP:?}
OVERLAY=$TOP/linux
T=$BUILD/linux
G=(git -C "$T" -c core.autocrlf=false -c diff.noprefix=false -c user.name=gmem -c user.email=gmem@localhost)

# Content hash of an overlay directory (default: linux/).
overlay_hash() {
	(cd "${1:-$OVERLAY}" 2>/dev/null && find . -type f -print0 | LC_ALL=C sort -z |
		xargs -0 -r sha256sum) | sha256sum | cut -d' ' -f1
}

# Hash of what 'make export' would write from the tree now.
tree_hash() {
	local tmp h
	tmp=$(mktemp -d "$BUILD/tree-hash.XXXXXX")
	export_to "$tmp/linux"
	h=$(overlay_hash "$tmp/linux")
	rm -rf "$tmp"
	echo "$h"
}

# Build a commit holding base + linux/, without touching the work tree.
overlay_commit() {
	local idx f rel mode sha
	idx=$(mktemp "$BUILD/overlay-index.XXXXXX")
	rm -f "$idx"
	GIT_INDEX_FILE=$idx "${G[@]}" read-tree base
	if [ -d "$OVERLAY" ]; then
		while IFS= read -r -d '' f; do
			rel=${f#"$OVERLAY"/}
			case $rel in
			*.patch)
				if ! GIT_INDEX_FILE=$idx "${G[@]}" apply --cached --whitespace=nowarn "$f"; then
					echo "tree: FAILED to apply linux/$rel" >&2
					rm -f "$idx"
					return 1
				fi
				;;
			*)
				mode=100644
				[ -x "$f" ] && mode=100755
				sha=$("${G[@]}" hash-object -w -- "$f")
				GIT_INDEX_FILE=$idx "${G[@]}" update-index --add --cacheinfo "$mode,$sha,$rel"
				;;
			esac
		done < <(find "$OVERLAY" -type f -print0 | LC_ALL=C sort -z)
	fi
	local tree
	tree=$(GIT_INDEX_FILE=$idx "${G[@]}" write-tree)
	rm -f "$idx"
	echo "overlay $(overlay_hash)" | "${G[@]}" commit-tree "$tree" -p base
}

# Write base..worktree into directory $1 in the overlay layout.
export_to() {
	local out=$1 st path
	mkdir -p "$out"
	"${G[@]}" diff --no-renames --name-status base -- . |
	while IFS=$'\t' read -r st path; do
		case $st in
		M)
			mkdir -p "$out/$(dirname "$path")"
			"${G[@]}" diff --no-color --no-ext-diff --no-renames base -- "$path" > "$out/$path.patch"
			;;
		A)
			mkdir -p "$out/$(dirname "$path")"
			cp -p "$T/$path" "$out/$path"
			;;
		*)
			echo "tree: $path: status $st (deleting upstream files is not supported)" >&2
			exit 1
			;;
		esac
	done
	# Not --exclude-standard: the kernel's .gitignore hides new files (e.g.
	# under tools/), and builds are out of tree, so untracked means ours.
	"${G[@]}" ls-files -z --others |
	while IFS= read -r -d '' path; do
		mkdir -p "$out/$(dirname "$path")"
		cp -p "$T/$path" "$out/$path"
	done
}


export_differs() {
	local tmp rc=0
	tmp=$(mktemp -d "$BUILD/export-check.XXXXXX")
	export_to "$tmp/linux"
	mkdir -p "$OVERLAY"
	diff -rq "$OVERLAY" "$tmp/linux" > "$tmp/diff" || rc=1
	if [ "${1:-}" = -v ] && [ $rc -ne 0 ]; then
		# Name each path once, relative to the kernel tree.
		sed -e "s|^Only in $tmp/linux\(/*\)\([^:]*\): \(.*\)|  not exported: \2\1\3|" \
		    -e "s|^Only in $OVERLAY\(/*\)\([^:]*\): \(.*\)|  only in linux/: \2\1\3|" \
		    -e "s|^Files $OVERLAY/\(.*\) and .* differ|  differs: \1|" "$tmp/diff"
	fi
	rm -rf "$tmp"
	return $rc
}

cmd_tree() {
	local h c old th
	if [ ! -d "$T/.git" ]; then
		echo "tree: creating $T from the base tree (once, about a minute)"
		rm -rf "$T.tmp"
		cp -a --reflink=auto "$BUILD/base" "$T.tmp"
		rm -f "$T.tmp/.done"
		git -C "$T.tmp" init -q -b main
		git -C "$T.tmp" add -A -f .
		git -C "$T.tmp" -c user.name=gmem -c user.email=gmem@localhost commit -q -m "base: Debian linux-source-7.3 7.3.4-1~bpo13+1"
		git -C "$T.tmp" tag base
		mv "$T.tmp" "$T"
	fi
	h=$(overlay_hash)
	old=$(cat "$T/.git/gmem-overlay-hash" 2>/dev/null || true)
	[ "$old" = "$h" ] && return 0
	if [ -n "$old" ]; then
		th=$(tree_hash)
		# The tree already equals linux/ (it was just exported): adopt it.
		if [ "$th" = "$h" ]; then
			echo "$h" > "$T/.git/gmem-overlay-hash"
			return 0
		fi
		if [ "$th" != "$old" ]; then
			echo "tree: $T holds changes that linux/ does not, and linux/ changed too." >&2
			echo "tree: run 'make export' (or reset the tree) first." >&2
			exit 1
		fi
	fi
	# The tree holds nothing unexported: move it to base + the new linux/.
	# Untracked files are all overlay files (see export_to), safe to drop.
	c=$(overlay_commit)
	"${G[@]}" checkout -q -f --detach "$c"
	"${G[@]}" clean -q -f -d -x
	echo "$h" > "$T/.git/gmem-overlay-hash"
	echo "tree: overlay applied ($(find "$OVERLAY" -type f 2>/dev/null | wc -l) files)"
}

cmd_export() {
	local tmp
	[ -d "$T/.git" ] || { echo "export: no tree at $T (make tree)" >&2; exit 1; }
	tmp=$(mktemp -d "$BUILD/export.XXXXXX")
	export_to "$tmp/linux"
	rm -rf "$OVERLAY"
	mv "$tmp/linux" "$OVERLAY"
	rm -rf "$tmp"
	# The tree and linux/ agree now: remember it, so 'make tree' leaves the tree alone.
	overlay_hash > "$T/.git/gmem-overlay-hash"
	echo "export: linux/ now holds $(find "$OVERLAY" -type f | wc -l) files"
}

cmd_export_check() {
	[ -d "$T/.git" ] || exit 0
	if ! export_differs -v; then
		echo "export-check: the scratch tree differs from linux/ at the paths above" >&2
		exit 1
	fi
}

case ${1:-} in
tree) cmd_tree ;;
export) cmd_export ;;
export-check) cmd_export_check ;;
*) echo "usage: $0 tree|export|export-check" >&2; exit 2 ;;
esac
