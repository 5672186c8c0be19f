#!/bin/bash
# Configure $BUILD/obj: tinyconfig + config/*.config via merge_config.sh, then
# check that every requested option survived olddefconfig.
set -euo pipefail
BUILD=${BUILD:?}
TOP=${TOP:?}
T=$BUILD/linux
O=$BUILD/obj
frags=("$TOP"/config/*.config)

stamp=$(cat "${frags[@]}" | sha256sum | cut -d' ' -f1)
[ -f "$O/.config" ] && [ "$(cat "$O/.gmem-config-stamp" 2>/dev/null)" = "$stamp" ] && exit 0

mkdir -p "$O"
echo "kconfig: tinyconfig + ${frags[*]##*/}"
make -s -C "$T" O="$O" tinyconfig > /dev/null
"$T"/scripts/kconfig/merge_config.sh -m -O "$O" "$O/.config" "${frags[@]}" > "$O/merge.log"
make -s -C "$T" O="$O" olddefconfig > /dev/null

# merge_config.sh only warns: fail here on anything Kconfig dropped.
bad=0
while IFS= read -r line; do
	case $line in
	CONFIG_*=n)
		sym=${line%%=*}
		if grep -q "^$sym=" "$O/.config"; then
			echo "kconfig: $sym: requested n, got $(grep "^$sym=" "$O/.config")" >&2
			bad=1
		fi
		;;
	CONFIG_*=*)
		if ! grep -qxF "$line" "$O/.config"; then
			sym=${line%%=*}
			got=$(grep -E "^$sym=|^# $sym is not set" "$O/.config" || echo "absent")
			echo "kconfig: $sym: requested ${line#*=}, got: $got" >&2
			bad=1
		fi
		;;
	esac
done < <(cat "${frags[@]}" | sed -e 's/[[:space:]]*#.*//' -e '/^$/d')
if [ $bad -ne 0 ]; then
	echo "kconfig: FAILED: the options above were dropped by Kconfig (missing dependency?)" >&2
	exit 1
fi
echo "$stamp" > "$O/.gmem-config-stamp"
