# gmem-hugetlb: build, boot and test an overlay on Debian's Linux 7.3.4.
#
#   make check [T=regex]   build, boot, run the tests (and checkpatch); the CI gate
#   make stress [T=regex]  the long runs of tests/stress-plan, then make check's
#                          plan on a KASAN + kmemleak kernel (not in CI)
#   make run               build, boot, show a guest on guest_memfd and a small benchmark
#   make bench             the full benchmark (tests/bench-plan): build/bench/
#   make tree | export | export-check   the scratch kernel tree (see README)
#
# Everything generated lives in build/ (BUILD=... to move it).  PROFILE=bench
# builds and boots a kernel without lockdep and DEBUG_VM (config/profiles/)
# in build/obj-bench, for timings; make check refuses it.  PROFILE=kasan adds
# KASAN and kmemleak to the debug kernel (build/obj-kasan): make check
# PROFILE=kasan runs the make check plan on it.

TOP     := $(CURDIR)
BUILD   ?= $(TOP)/build
T       ?=
PROFILE ?=
export TOP BUILD T PROFILE

.PHONY: all check stress run bench tree export export-check deps fetch kernel selftests initramfs checkpatch

all: check

deps:
	@scripts/deps.sh

fetch: deps
	@scripts/fetch-base.sh

tree: fetch
	@scripts/tree.sh tree

export:
	@scripts/tree.sh export

export-check:
	@scripts/tree.sh export-check

kernel: tree
	@scripts/build.sh kernel

selftests: kernel
	@scripts/build.sh selftests

initramfs: selftests
	@scripts/initramfs.sh

checkpatch: tree
	@scripts/checkpatch.sh

check: initramfs
	@scripts/check.sh

# The stress plan on the check kernel, then the make check plan on the
# sanitizer kernel (PROFILE=kasan); fails if either does.
stress: initramfs
	@rc=0; PLAN=$(TOP)/tests/stress-plan scripts/check.sh || rc=1; \
	PROFILE=kasan scripts/build.sh kernel && PROFILE=kasan scripts/check.sh || rc=1; \
	exit $$rc

run: initramfs
	@scripts/run.sh

bench: initramfs
	@scripts/bench.sh $(TOP)/tests/bench-plan $(BUILD)/bench
