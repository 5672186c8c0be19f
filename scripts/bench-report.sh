#!/bin/bash
# Turn gmem_bench's output into CSV files, a markdown report and plots.
#   bench-report.sh OUTDIR RESULTS...
# RESULTS are the runner's results.txt of each boot ("# @csv TABLE,header"
# and "# @row TABLE,..." lines).  Writes OUTDIR/TABLE.csv, OUTDIR/report.md,
# OUTDIR/summary.md and, with gnuplot, OUTDIR/*.png (its messages in
# OUTDIR/gnuplot.log).  Prints the summary.
set -euo pipefail
out=$1
shift
mkdir -p "$out"
rm -f "$out"/*.csv "$out"/*.png "$out"/*.dat

# CSV: the header once, the rows of every boot in order.
for f in "$@"; do
	sed -n 's/^# @\(csv\|row\) //p' "$f"
done | awk -F, -v out="$out" '
	{ t = $1; line = substr($0, length(t) + 2) }
	/^[a-z_]+,backing,/ && !(t in hdr) { hdr[t] = 1; print line > (out "/" t ".csv"); next }
	/^[a-z_]+,backing,/ { next }
	{ print line > (out "/" t ".csv") }'

for t in footprint latency; do
	[ -s "$out/$t.csv" ] || { echo "bench-report: no $t rows in $*" >&2; exit 1; }
done

# footprint: backing,layout,shared_pct,guest_mb,beyond_mb,hugetlb_mb,memfree_drop_mb,
#            vmemmap_mb,huge_cov,huge_limit,cov_1g,limit_1g,fallocate_ms,convert_ms,touch_ms,
#            release_ms,refault_ms
# latency:   backing,op,n,median_us,p99_us,guest_median_us,guest_p99_us
# numa:      backing,policy,size_mb,node0,node1,on_policy,fallocate_ms
fp=$out/footprint.csv lat=$out/latency.csv numa=$out/numa.csv
guest_mb=$(awk -F, 'NR == 2 { print $4 }' "$fp")
order="L L-1G 4K 2M 1G"

{
	echo "| backing | beyond guest, 10% shared scattered (MiB) | same, clustered (MiB) | huge-mapped, 10% clustered (limit) | 4K to shared, median µs | 4K back, median µs |"
	echo "|---|---:|---:|---:|---:|---:|"
	for b in $order; do
		awk -F, -v b="$b" '
			FILENAME ~ /footprint/ && $1 == b && $3 == 10 && $2 == "scattered" { fs = $5 }
			FILENAME ~ /footprint/ && $1 == b && $3 == 10 && $2 == "clustered" { fc = $5; cov = $9 " (" $10 ")" }
			FILENAME ~ /latency.csv/ && $1 == b && $2 == "4k_to_shared" { sh = $4 }
			FILENAME ~ /latency.csv/ && $1 == b && $2 == "4k_to_private" { pr = $4 }
			END {
				if (fs == "" && sh == "") exit
				# make run measures the scattered layout only.
				printf "| %s | %s | %s | %s | %s | %s |\n", b, fs, (fc == "" ? "-" : fc),
				       (cov == "" ? "-" : cov), sh, pr
			}' "$fp" "$lat"
	done
} > "$out/summary.md"

{
	echo "# gmem_bench report"
	echo
	echo "Guest of ${guest_mb} MiB, KVM_X86_SW_PROTECTED_VM, every time QEMU TCG time"
	echo "(nested SVM under TCG, a debug kernel with lockdep and DEBUG_VM): compare"
	echo "ratios within this run, never with hardware. L and L-1G ran in their own"
	echo "boot (kvm.gmem_in_place_conversion=0)."
	echo
	echo "## Summary (10% of the guest's 4K pages shared)"
	echo
	cat "$out/summary.md"
	echo
	echo "## P1 host memory beyond the guest's size (MiB)"
	echo
	echo "After fallocate of the whole guest, converting the shared pages and the guest"
	echo "writing every 4K page. MemFree drop plus hugetlb pages taken, minus the guest's"
	echo "size; it includes KVM's page tables. vmemmap: struct pages restored for split"
	echo "blocks (fdinfo vmemmap_restored_kb)."
	echo
	echo "| backing | layout | shared % | beyond | hugetlb | MemFree drop | vmemmap |"
	echo "|---|---|---:|---:|---:|---:|---:|"
	awk -F, 'NR > 1 { printf "| %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $5, $6, $7, $8 }' "$fp"
	echo
	echo "## P2 huge mappings after the guest touched everything"
	echo
	echo "Fraction of guest memory KVM maps 2M or 1G (VM stats pages_2m/pages_1g),"
	echo "against the limit: the fraction in uniform 2M blocks the backing can map huge."
	echo
	echo "| backing | layout | shared % | huge (≥2M) | limit | 1G | 1G limit |"
	echo "|---|---|---:|---:|---:|---:|---:|"
	awk -F, 'NR > 1 { printf "| %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $9, $10, $11, $12 }' "$fp"
	echo
	echo "## P3 conversion latency (µs, QEMU TCG)"
	echo
	echo "4k_to_shared / 4k_to_private: the guest converts one 4K page of a uniform,"
	echo "huge-mapped block with KVM_HC_MAP_GPA_RANGE and back (2M/1G: a split, then a"
	echo "merge); host = the VMM's ioctl (and punch, for L), guest = the guest's time"
	echo "around the hypercall. 4k_in_split: a page next to a shared one (no split or"
	echo "merge). 2m_*, 1g_*: one call converting that range."
	echo
	echo "| backing | op | n | host median | host p99 | guest median | guest p99 |"
	echo "|---|---|---:|---:|---:|---:|---:|"
	awk -F, 'NR > 1 { printf "| %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, ($6 < 0 ? "" : $6), ($7 < 0 ? "" : $7) }' "$lat"
	echo
	echo "## P4 population (ms, QEMU TCG)"
	echo
	echo "fallocate of the whole guest: median over the backing's configurations (the"
	echo "first one also pays QEMU's first touch of the VM's RAM). First touch: the"
	echo "guest writes every 4K page, all private (the 0% row)."
	echo
	echo "| backing | fallocate (median, n) | guest first touch | µs per 4K page touched |"
	echo "|---|---:|---:|---:|"
	for b in $order; do
		awk -F, -v b="$b" 'NR > 1 && $1 == b && $13 != "n/a" { print $13 }' "$fp" | sort -g |
			awk '{ v[NR] = $1 } END { if (NR) printf "%s %d\n", v[int((NR + 1) / 2)], NR }' |
			while read -r med n; do
				awk -F, -v b="$b" -v med="$med" -v n="$n" 'NR > 1 && $1 == b && $3 == 0 {
					printf "| %s | %s (%s) | %s | %.1f |\n", b, med, n, $15, $15 * 1000 / ($4 * 256) }' "$fp"
			done
	done
	echo
	echo "## P6 fault path"
	echo
	echo "The guest's first touch of every page of a 4K-backed guest, all private: one"
	echo "KVM fault per 4K page. In-place (4K) against the legacy model (L), which ran"
	echo "in the other boot:"
	echo
	awk -F, 'NR > 1 && $3 == 0 && ($1 == "4K" || $1 == "L") { t[$1] = $15 }
		END { if (t["4K"] && t["L"]) printf "4K / L first-touch time: %.3f (4K %s ms, L %s ms)\n", t["4K"] / t["L"], t["4K"], t["L"] }' "$fp"
	echo
	echo "The same faults again once the memory is allocated (in place: a round trip of"
	echo "conversions drops KVM's mappings, nothing else), all private:"
	echo
	refault=$(awk -F, 'NR > 1 && $3 == 0 && $17 != "" && $17 != "n/a" && $17 >= 0 {
		printf "| %s | %s | %.2f |\n", $1, $17, $17 * 1000 / ($4 * 256) }' "$fp")
	if [ -n "$refault" ]; then
		echo "| backing | refault ms | µs per 4K page |"
		echo "|---|---:|---:|"
		echo "$refault"
	else
		echo "(not measured in this run: it needs the 0% rows, gmem_bench -m f or -m p)"
	fi
	echo
	echo "## Release: closing the file under a live memslot (ms, QEMU TCG)"
	echo
	echo "The VMM closes (and unmaps) the guest_memfd while the memslot is bound and the"
	echo "guest's pages are mapped: KVM's mappings are dropped, then the folios freed."
	echo "More attribute runs must not mean more zaps."
	echo
	echo "| backing | layout | shared % | release ms |"
	echo "|---|---|---:|---:|"
	awk -F, 'NR > 1 && $16 != "" && $16 != "n/a" { printf "| %s | %s | %s | %s |\n", $1, $2, $3, $16 }' "$fp"
	echo
	echo "## P5 NUMA placement of HugeTLB files"
	echo
	echo "mbind() on the file's mapping, then fallocate. on_policy: fraction of folios on"
	echo "the policy's nodes (default: any node)."
	echo
	echo "| backing | policy | size MiB | folios node 0 | node 1 | on policy | fallocate ms |"
	echo "|---|---|---:|---:|---:|---:|---:|"
	[ -s "$numa" ] && awk -F, 'NR > 1 { printf "| %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7 }' "$numa"
} > "$out/report.md"

# Plots (gnuplot-nox, a Debian package deps.sh installs).
if command -v gnuplot > /dev/null; then
	# Footprint vs shared fraction, scattered; x is the index of the fraction.
	for b in $order; do
		awk -F, -v b="$b" 'NR > 1 && $1 == b && ($2 == "scattered" || $3 == 0) && $5 != "n/a" {
			x = ($3 == 0 ? 0 : $3 == 1 ? 1 : $3 == 10 ? 2 : 3); print x, $5 }' "$fp" \
			| sort -n > "$out/fp_$b.dat"
		awk -F, -v b="$b" 'NR > 1 && $1 == b && $9 != "n/a" { print $10, $9 }' "$fp" \
			> "$out/cov_$b.dat"
		for op in 4k_to_shared 4k_to_private; do
			[ -s "$out/latency_samples.csv" ] || continue
			awk -F, -v b="$b" -v op="$op" '$1 == b && $2 == op {
				for (i = 3; i <= NF; i++) print $i }' "$out/latency_samples.csv" \
				| sort -g | awk '{ v[NR] = $1 } END { for (i = 1; i <= NR; i++) print v[i], i / NR }' \
				> "$out/cdf_${b}_$op.dat"
		done
	done
	plot_fp="" plot_cov="" plot_cdf=""
	for b in $order; do
		[ -s "$out/fp_$b.dat" ] && plot_fp+="'$out/fp_$b.dat' using 1:2 with linespoints title '$b', "
		[ -s "$out/cov_$b.dat" ] && plot_cov+="'$out/cov_$b.dat' using 1:2 with points pointsize 1.5 title '$b', "
		for op in 4k_to_shared 4k_to_private; do
			[ -s "$out/cdf_${b}_$op.dat" ] &&
				plot_cdf+="'$out/cdf_${b}_$op.dat' using 1:2 with lines title '$b ${op#4k_}', "
		done
	done
	gnuplot 2> "$out/gnuplot.log" <<-EOF
		set terminal pngcairo size 900,540 noenhanced
		set grid
		set output '$out/footprint.png'
		set title 'Host memory beyond a ${guest_mb} MiB guest vs shared 4K pages (scattered)'
		set xlabel 'shared 4K pages'
		set ylabel 'MiB beyond the guest size'
		set xtics ('0%%' 0, '1%%' 1, '10%%' 2, '50%%' 3)
		set key top left
		plot ${plot_fp%, }
		set output '$out/coverage.png'
		set title 'Guest memory KVM maps 2M or 1G, vs the most that can be'
		set xlabel 'limit (fraction in uniform huge-backed blocks)'
		set ylabel 'measured fraction'
		set xtics auto
		set xrange [-0.05:1.05]
		set yrange [-0.05:1.05]
		plot x with lines dashtype 2 title 'measured = limit', ${plot_cov%, }
		set output '$out/latency_cdf.png'
		set title 'One 4K conversion from the guest: host ioctl time CDF (QEMU TCG)'
		set xlabel 'microseconds (QEMU TCG, not hardware)'
		set ylabel 'fraction of conversions'
		set logscale x
		set autoscale x
		set yrange [0:1]
		set key bottom right
		plot ${plot_cdf%, }
	EOF
	rm -f "$out"/*.dat
fi

echo "gmem_bench summary (guest ${guest_mb} MiB; QEMU TCG times, compare only as ratios):"
cat "$out/summary.md"
