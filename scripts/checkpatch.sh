#!/bin/bash
# checkpatch --strict on every file we wrote and every patch we carry.
set -euo pipefail
BUILD=${BUILD:?}
TOP=${TOP:?}
cp=$BUILD/linux/scripts/checkpatch.pl
# checkpatch's SPDX check runs "python3" with ply: use Debian's, not a pyenv.
export PATH=/usr/bin:$PATH
rc=0
cd "$TOP/linux"
while IFS= read -r -d '' f; do
	f=${f#./}
	case $f in
	*.patch) args=(--no-signoff "$TOP/linux/$f") ;;
	*) args=(-f "$TOP/linux/$f") ;;
	esac
	# uAPI headers (and tools/' copies of them) cannot use BIT_ULL().
	case $f in
	*/uapi/*) args=(--ignore BIT_MACRO "${args[@]}") ;;
	esac
	if ! out=$(cd "$BUILD/linux" && "$cp" --strict --quiet --no-summary --show-types \
			--root="$BUILD/linux" "${args[@]}" 2>&1); then
		echo "$f:"
		echo "$out" | sed 's/^/    /'
		rc=1
	fi
done < <(find . -type f -print0 | LC_ALL=C sort -z)
exit $rc
