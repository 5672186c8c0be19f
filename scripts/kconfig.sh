#!/bin/bash
# Configure $BUILD/obj: tinyconfig + config/*.config via merge_config.sh, then
# check that every requested option survived olddefconfig.
set -euo pipefail
BUILD=${BUILD:?}
TOP=${TOP:?}
T=$BUILD/linux
O=$BUILD/obj${PROFILE:+-$PROFILE}
frags=("$TOP"/config/*.config)
# PROFILE=name adds config/profiles/name.config (last, so it wins).
if [ -n "${PROFILE:-}" ]; then
	[ -f "$TOP/config/profiles/$PROFILE.config" ] ||
		{ echo "kconfig: no config/profiles/$PROFILE.config" >&2; exit 1; }
	frags+=("$TOP/config/profiles/$PROFILE.config")
fi

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
done < <(cat "${frags[@]}" | sed -e 's/[[:space:]]*#.*//' -e '/^$/d' |
	# The last fragment that names a symbol wins (a profile overrides).
	awk -F= '{ v[$1] = $0; if (!($1 in seen)) { seen[$1] = 1; order[++n] = $1 } }
		END { for (i = 1; i <= n; i++) print v[order[i]] }')
if [ $bad -ne 0 ]; then
	echo "kconfig: FAILED: the options above were dropped by Kconfig (missing dependency?)" >&2
	exit 1
fi
echo "$stamp" > "$O/.gmem-config-stamp"
