#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# make vmtest: boot stock Debian kernels under qemu and run the selftests
# inside them, with the JIT on and again with bpf_jit_enable=0 where the
# kernel allows it.
#
#   tests/vm/vmtest.sh TEST_BINARY OUTDIR
#   KERNELS="6.1 6.12 7.3"   which kernels (Debian suites below; riscv64: 7.2;
#                            6.12+deb12: Debian 12's own 6.12, from bookworm-security);
#                            each the newest build of its series, 6.12~prev
#                            the build before it
#   VM_TIMEOUT=1800          seconds per boot; a hang fails, never stalls
#   VM_RANDOM_FORMATS=5000   random formats per run (TCG is ~10x slower)
#   VM_CORRUPTIONS=10000     corrupted node slots per loop shape (corrupt/random_words)
#   VM_KEYS=100000           keys of the guests' main job (the loader's default: 1M)
#
# Kernels come from Debian's mirror with apt-get download against a private
# sources list, lists and cache under OUTDIR (the system's apt setup is
# never touched), unpacked with dpkg -x; a second run needs no network.
# The guest is busybox-static plus the static test binary; results come
# back over a second serial port written to a file.  The guest writes
# bpf_jit_enable itself (1, then 0): riscv64's JIT is off by default.
set -euo pipefail

TESTBIN=$(readlink -f "$1")
SRC_DIR=$(cd "$(dirname "$0")/../.." && pwd)
OUT=$(readlink -f "${2:-.output}")/vm
VM_ARCH=${VM_ARCH:-x86_64}		# x86_64, arm64 or riscv64
case "$VM_ARCH" in
x86_64) DEB_ARCH=amd64 ;;
arm64) DEB_ARCH=arm64 ;;
riscv64) DEB_ARCH=riscv64 ;;
*) echo "vmtest: unsupported VM_ARCH $VM_ARCH (x86_64, arm64, riscv64)" >&2; exit 2 ;;
esac
if [ "$VM_ARCH" = riscv64 ]; then
	KERNELS=${KERNELS:-7.2}
else
	KERNELS=${KERNELS:-"6.1 6.12 7.3"}
fi
VM_TIMEOUT=${VM_TIMEOUT:-1800}
VM_RANDOM_FORMATS=${VM_RANDOM_FORMATS:-5000}
VM_CORRUPTIONS=${VM_CORRUPTIONS:-10000}
VM_KEYS=${VM_KEYS:-100000}		# the guests' main job: keys (TCG)
VM_LOADER=${VM_LOADER:-}		# the static loader to put in (make vmtest does)
VM_IMAGE=${VM_IMAGE:-}			# a real image for its image command
VM_TEST_ARGS=${VM_TEST_ARGS:-}		# e.g. "-t search" to run a subset
VM_APT_MAX_AGE=${VM_APT_MAX_AGE:-21600}	# refresh the kernel lists after 6 h
MIRROR=${MIRROR:-http://deb.debian.org/debian}
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg

# The private apt setup of architecture $1: its directory and options in
# APT_DIR and APT_OPTS (the module's kbuild tools come from amd64's).
set_apt() {
	APT_DIR=$OUT/apt-kernels-$1
	APT_OPTS=(-o "Dir::Etc::SourceList=$APT_DIR/sources.list" -o "Dir::Etc::SourceParts=/nonexistent"
		  -o "Dir::State::Lists=$APT_DIR/lists" -o "Dir::Cache=$APT_DIR/cache"
		  -o "Dir::State::status=$APT_DIR/status" -o "APT::Sandbox::User=root"
		  -o "APT::Architecture=$1" -o "APT::Architectures=$1" -q)
	APT_ARCH=$1
}
set_apt "$DEB_ARCH"

log() { printf '  %-8s %s\n' "$1" "$2" >&2; }

# The Debian suite that ships each kernel series.
suite_of() {
	case "$1" in
	6.1) echo bookworm ;;
	6.12) echo trixie ;;
	7.3) echo trixie-backports ;;
	7.2) echo sid ;;		# riscv64: the only suite serving it here
	6.12+deb12) echo bookworm-security ;;	# Debian 12's 6.12, built by gcc-12
	*) echo "vmtest: unknown kernel series $1 (6.1, 6.12, 6.12+deb12, 7.3; riscv64: 7.2)" >&2; return 1 ;;
	esac
}

# The private apt lists: made once, refreshed when older than
# VM_APT_MAX_AGE seconds, so that a new stable kernel is booted the day it
# appears; a failed refresh keeps the lists it had (offline re-runs).
apt_setup() {
	local s stamp=$APT_DIR/updated
	if [ -s "$APT_DIR/sources.list" ] && [ -e "$stamp" ] &&
	   [ $(( $(date +%s) - $(stat -c %Y "$stamp") )) -lt "$VM_APT_MAX_AGE" ]; then
		return 0
	fi
	mkdir -p "$APT_DIR/lists/partial" "$APT_DIR/cache/archives/partial"
	[ -e "$APT_DIR/status" ] || : >"$APT_DIR/status"
	if [ "$APT_ARCH" = riscv64 ]; then
		# trixie's riscv64 indexes fail apt's size check; sid's work
		echo "deb [signed-by=$KEYRING] $MIRROR sid main" >"$APT_DIR/sources.list"
	else
		{
			for s in bookworm trixie trixie-backports; do
				echo "deb [signed-by=$KEYRING] $MIRROR $s main"
			done
			# the current arm64 6.1 build is in bookworm-security
			echo "deb [signed-by=$KEYRING] ${MIRROR%/debian}/debian-security bookworm-security main"
		} >"$APT_DIR/sources.list"
	fi
	log APT "private lists in $APT_DIR"
	if apt-get "${APT_OPTS[@]}" update >/dev/null; then
		touch "$stamp"
	elif [ -e "$stamp" ]; then
		log APT "refresh failed: using the lists of $(date -r "$stamp" +%F)"
	else
		echo "vmtest: apt-get update of the private lists failed" >&2
		return 1
	fi
}

# "PACKAGE VERSION" of kernel series $1: the package Debian's metapackage
# linux-image-ARCH depends on in the series' suite, i.e. the newest build.
# SERIES~prev names the build before it (the same package name with an
# earlier upstream version or ABI number), while the archive still has it.
resolve_kernel() {
	local spec=$1 series=${1%~prev} ver dep re prev
	suite_of "$series" >/dev/null || return 1
	apt_setup || return 1
	if [ "$series" = 6.12+deb12 ]; then
		# no metapackage points at it: the newest build by name
		dep=$(apt-cache "${APT_OPTS[@]}" pkgnames linux-image-6.12. |
		      grep -E "^linux-image-6\.12\.[0-9]+\+deb12-$DEB_ARCH\$" | sort -V | tail -1)
		[ -n "$dep" ] || { echo "vmtest: no linux-image-6.12.*+deb12-$DEB_ARCH" >&2; return 1; }
		[ "$spec" = "$series" ] || { echo "vmtest: $spec: no ~prev for $series" >&2; return 1; }
		echo "$dep $(apt_version "$dep")"
		return 0
	fi
	ver=$(apt-cache "${APT_OPTS[@]}" madison "linux-image-$DEB_ARCH" |
	      awk -v s="$series" -F'|' '{gsub(/ /,"",$2)} index($2, s".")==1 {print $2; exit}')
	[ -n "$ver" ] || { echo "vmtest: no linux-image-$DEB_ARCH $series.* in $(suite_of "$series")" >&2; return 1; }
	dep=$(apt-cache "${APT_OPTS[@]}" show "linux-image-$DEB_ARCH=$ver" |
	      sed -n 's/^Depends: //p' | tr ',' '\n' | grep -o 'linux-image-[^ ]*' | head -1)
	[ -n "$dep" ] || { echo "vmtest: linux-image-$DEB_ARCH $ver depends on no kernel" >&2; return 1; }
	if [ "$spec" = "$series" ]; then
		echo "$dep $ver"
		return 0
	fi
	# the name with its version and ABI numbers as wildcards: 6.12.117+deb13-amd64
	# -> 6\.12\.[0-9]+\+deb13-amd64, 6.1.0-50-amd64 -> 6\.1\.[0-9]+-[0-9]+-amd64
	re=$(printf '%s' "${dep#linux-image-"$series".}" | sed -E 's/[.+]/\\&/g; s/(^|[-.])[0-9]+/\1[0-9]+/g')
	re="^linux-image-${series//./\\.}\\.$re\$"
	prev=$(apt-cache "${APT_OPTS[@]}" pkgnames linux-image- | grep -E "$re" | sort -V |
	       awk -v d="$dep" '$0 == d {print p; exit} {p = $0}')
	[ -n "$prev" ] || { echo "vmtest: the archive has no build of $series before $dep" >&2; return 1; }
	ver=$(apt-cache "${APT_OPTS[@]}" madison "$prev" | awk -F'|' '{gsub(/ /,"",$2); print $2; exit}')
	echo "$prev $ver"
}

# vmlinuz of kernel $1 (a series, or SERIES~prev), fetched once per
# package into $OUT/kernels/ARCH-PACKAGE (earlier builds stay there);
# DIR/package says which build it is.
fetch_kernel() {
	local spec=$1 pkg ver dir bin z
	read -r pkg ver < <(resolve_kernel "$spec") || return 1
	[ -n "$pkg" ] || return 1
	dir=$OUT/kernels/$DEB_ARCH-$pkg
	if [ -s "$dir/vmlinuz" ] && [ -s "$dir/package" ]; then
		echo "$dir/vmlinuz"
		return 0
	fi
	mkdir -p "$dir/debs" "$dir/root"
	# newer kernels split the image: the binary package holds vmlinuz
	for bin in "$pkg" "linux-binary-${pkg#linux-image-}"; do
		(cd "$dir/debs" && apt-get "${APT_OPTS[@]}" download "$bin=$ver" >/dev/null 2>&1) || continue
		dpkg -x "$dir/debs/${bin}"_*.deb "$dir/root"
		z=$(find "$dir/root" -path '*boot/vmlinuz-*' -o -path '*modules/*/vmlinuz' | head -1)
		if [ -n "$z" ]; then
			cp "$z" "$dir/vmlinuz"
			echo "$pkg $ver" >"$dir/package"
			rm -rf "$dir/root" "$dir/debs"
			log KERNEL "$spec: $pkg ($ver)"
			echo "$dir/vmlinuz"
			return 0
		fi
	done
	echo "vmtest: no vmlinuz found for $spec ($pkg $ver)" >&2
	return 1
}

# kmod/'s module for each kernel, built against its Debian headers:
# natively where the host's gcc built the kernel (bookworm's gcc-12: 6.1,
# and arm64's with the cross gcc-12), else in a trixie chroot with the
# gcc-14 that built trixie's kernels (x86 only).  KMODS collects
# "ABI PATH" lines for the initrd; KMOD_WHY the kernels without one.
TRIXIE_ROOT=$OUT/trixie-root
KMODS=()
declare -A KMOD_WHY

# make_root DIR SUITE PACKAGES: a minbase debootstrap of SUITE into DIR
# (once: DIR/.done) with PACKAGES.
make_root() {
	local dir=$1 suite=$2 pkgs=$3
	[ -e "$dir/.done" ] && return 0
	command -v debootstrap >/dev/null ||
		{ echo "vmtest: debootstrap is not installed (a $suite chroot builds modules)" >&2; return 1; }
	rm -rf "$dir"
	log CHROOT "debootstrap $suite into $dir"
	if ! debootstrap --variant=minbase --include="$pkgs" "$suite" "$dir" "$MIRROR" \
		>"$OUT/debootstrap-$suite.log" 2>&1; then
		echo "vmtest: debootstrap $suite failed; see $OUT/debootstrap-$suite.log" >&2
		return 1
	fi
	touch "$dir/.done"
}

trixie_root() {
	make_root "$TRIXIE_ROOT" trixie make,gcc-14,libc6-dev,libelf1t64,libssl3t64,zlib1g,pahole,binutils
}

# riscv64's kernel (sid's) is built by a newer gcc than any cross
# compiler of bookworm: a sid chroot with riscv64 as a foreign
# architecture installs the kernel's headers with their build
# dependencies (gcc-N-for-host pulls the cross gcc-N, amd64's kbuild and
# pahole come along).  About 1.1 GB, made once.
SID_ROOT=$OUT/sid-root

sid_root() {
	[ -e "$SID_ROOT/.arch" ] && return 0
	make_root "$SID_ROOT" sid make,libc6-dev,binutils,ca-certificates || return 1
	# the host's apt may accept a mirror snapshot past its Valid-Until:
	# so does the chroot's (the signatures are checked all the same)
	# (sed, not grep -q: under pipefail, apt-config's SIGPIPE would fail it)
	if [ "$(apt-config dump | sed -n 's/^Acquire::Check-Valid-Until "\(.*\)";$/\1/p' | tail -1)" = false ]; then
		echo 'Acquire::Check-Valid-Until "false";' >"$SID_ROOT/etc/apt/apt.conf.d/99valid-until"
	fi
	chroot "$SID_ROOT" dpkg --add-architecture riscv64 && touch "$SID_ROOT/.arch"
}

# The version apt has of package $1.
apt_version() {
	apt-cache "${APT_OPTS[@]}" madison "$1" | awk -F'|' '{gsub(/ /,"",$2); print $2; exit}'
}

# Downloads package $1 (of the current apt setup) into $2 and unpacks it into $3.
fetch_unpack() {
	local p=$1 ver
	ver=$(apt_version "$p")
	[ -n "$ver" ] || { echo "vmtest: kmod: no package $p in the archive" >&2; return 1; }
	(cd "$2" && apt-get "${APT_OPTS[@]}" download "$p=$ver" >/dev/null) || return 1
	dpkg -x "$2/${p}_"*.deb "$3"
}

# build_kmod_sid ABI GCC: riscv64's module in the sid chroot, its headers
# installed there by apt (with the cross GCC they depend on).  Returns 2
# on failure: sid moves, and riscv64's module is the one not required.
build_kmod_sid() {
	local abi=$1 gcc=$2 hdr=linux-headers-$1 dir=$SID_ROOT/kbuild/riscv64-$1
	sid_root || { KMOD_WHY[$abi]="no sid chroot for its $gcc cross compiler"; return 2; }
	if [ ! -e "$SID_ROOT/usr/src/$hdr/Makefile" ]; then
		log APT "sid chroot: $hdr:riscv64 and the cross $gcc"
		if ! { chroot "$SID_ROOT" apt-get -q update &&
		       chroot "$SID_ROOT" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
				--no-install-recommends "$hdr:riscv64"; } >"$OUT/sid-apt.log" 2>&1; then
			KMOD_WHY[$abi]="installing $hdr in the sid chroot failed (see $OUT/sid-apt.log)"
			return 2
		fi
	fi
	if ! BK_CHROOT=$SID_ROOT "$SRC_DIR/kmod/build.sh" "$SID_ROOT/usr/src/$hdr" "$dir" \
		ARCH=riscv CROSS_COMPILE=riscv64-linux-gnu- >"$OUT/kmod-riscv64.log" 2>&1; then
		KMOD_WHY[$abi]="the build failed: $(grep -m1 -E 'error|Error' "$OUT/kmod-riscv64.log")"
		cat "$OUT/kmod-riscv64.log" >&2
		return 2
	fi
	log KMOD "$abi: $dir/bkey_kmod.ko ($gcc, sid chroot)"
	KMODS+=("$abi $dir/bkey_kmod.ko")
}

# build_kmod PACKAGE: the module for kernel package PACKAGE (linux-image-ABI).
build_kmod() {
	local pkg=$1 abi=${1#linux-image-} hdr deps gcc root dir kdir args=() chroot=
	hdr=linux-headers-$abi
	deps=$(apt-cache "${APT_OPTS[@]}" show "$hdr=$(apt_version "$hdr")" 2>/dev/null |
	       sed -n 's/^Depends: //p' | head -1 | tr ',' '\n')
	[ -n "$deps" ] || { KMOD_WHY[$abi]="no $hdr in the archive"; return 2; }
	# the compiler that built it: "gcc-14", or "linux-compiler-gcc-12-x86"
	gcc=$(printf '%s\n' "$deps" | grep -o 'gcc-[0-9]*' | head -1)
	case "$VM_ARCH:$gcc" in
	x86_64:gcc-12) root=$OUT/kmod/$DEB_ARCH-$abi ;;
	arm64:gcc-12) root=$OUT/kmod/$DEB_ARCH-$abi
		      args=(ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu-) ;;
	x86_64:gcc-14) trixie_root || { KMOD_WHY[$abi]="no trixie chroot for its gcc-14"; return 1; }
		       root=$TRIXIE_ROOT/kbuild/$DEB_ARCH-$abi
		       chroot=$TRIXIE_ROOT ;;
	riscv64:gcc-*) build_kmod_sid "$abi" "$gcc"
		       return ;;
	*) KMOD_WHY[$abi]="built by ${gcc:-an unknown compiler}: no $VM_ARCH cross $gcc here (gcc-12 cross compilers, a trixie chroot for x86's gcc-14, a sid chroot for riscv64)"
	   return 2 ;;
	esac
	kdir=$root/root/usr/src/$hdr
	if [ ! -e "$root/.headers" ]; then
		rm -rf "$root"
		mkdir -p "$root/debs" "$root/root"
		KMOD_WHY[$abi]="its headers could not be fetched"
		fetch_unpack "$hdr" "$root/debs" "$root/root" || return 1
		local d
		for d in $(printf '%s\n' "$deps" | grep -oE 'linux-(headers|kbuild)-[^ ]+'); do
			if [ "$VM_ARCH" != x86_64 ] && [[ $d == linux-kbuild-* ]]; then
				# kbuild's tools run on the build machine: amd64's
				( set_apt amd64 && apt_setup && fetch_unpack "$d" "$root/debs" "$root/root" ) ||
					return 1
			else
				fetch_unpack "$d" "$root/debs" "$root/root" || return 1
			fi
		done
		unset "KMOD_WHY[$abi]"
		rm -rf "$root/debs"
		# the headers' Makefile names itself (7.3: KBUILD_OUTPUT) and the
		# common package by their /usr/src paths
		sed -i "s#/usr/src/#${root#"$chroot"}/root/usr/src/#g" "$kdir/Makefile"
		touch "$root/.headers"
	fi
	# headers that ship a vmlinux (6.12) make kbuild run pahole for the
	# module's BTF: without pahole here (the chroot has it), no BTF
	if [ -z "$chroot" ] && [ -e "$kdir/vmlinux" ] && ! command -v pahole >/dev/null; then
		args+=(CONFIG_DEBUG_INFO_BTF_MODULES=)
	fi
	dir=$root/build
	if ! BK_CHROOT=$chroot "$SRC_DIR/kmod/build.sh" "$kdir" "$dir" "${args[@]}" \
		>"$root/build.log" 2>&1; then
		KMOD_WHY[$abi]="the build failed: $(grep -m1 -E 'error|Error' "$root/build.log")"
		cat "$root/build.log" >&2
		return 1
	fi
	log KMOD "$abi: $dir/bkey_kmod.ko ($gcc${chroot:+, trixie chroot})"
	KMODS+=("$abi $dir/bkey_kmod.ko")
}

# The guest: busybox-static, the test binary, and /init.
make_initrd() {
	local root=$OUT/initrd-root bb tty=ttyS1
	case "$VM_ARCH" in
	x86_64) bb=$(command -v busybox) ||
			{ echo "vmtest: busybox-static is not installed" >&2; return 1; } ;;
	arm64) bb=$BUSYBOX		# from the arch's sysroot
	       tty=ttyS0 ;;		# virt: the pci-serial result port (console: ttyAMA0)
	riscv64) bb=$BUSYBOX
		 tty=ttyS1 ;;		# virt: ttyS0 is the console's ns16550
	esac
	file -L "$bb" | grep -q 'statically linked' ||
		{ echo "vmtest: $bb is not static (install busybox-static)" >&2; return 1; }
	rm -rf "$root"
	mkdir -p "$root"/{bin,dev,proc,sys,tmp}
	cp "$bb" "$root/bin/busybox"
	for a in sh mount mkdir cat echo uname poweroff sync sleep dmesg grep tail head; do
		ln -s busybox "$root/bin/$a"
	done
	cp "$TESTBIN" "$root/test_progs"
	# the loader at /loader, where the CLI tests find it (cwd /), and a
	# real image for it where ../shared has one
	[ -n "$VM_LOADER" ] && cp "$VM_LOADER" "$root/loader"
	# kmod/'s module for each kernel, by its release
	local m
	for m in "${KMODS[@]}"; do
		mkdir -p "$root/kmod/${m%% *}"
		cp "${m#* }" "$root/kmod/${m%% *}/"
	done
	if [ -n "$VM_IMAGE" ] && [ -f "$VM_IMAGE" ]; then
		mkdir -p "$root/data"
		cp "$VM_IMAGE" "$root/data/"
	fi
	cat >"$root/init" <<EOF
#!/bin/sh
export PATH=/bin
mount -t devtmpfs dev /dev
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t tmpfs tmp /tmp
mkdir -p /sys/fs/bpf && mount -t bpf bpf /sys/fs/bpf
exec >/dev/$tty 2>&1
echo "== kernel \$(uname -r)"
# The loader itself: the main job (fewer keys than its default: TCG), then
# image on a real image where one was put in.  Each must exit 0 with 0
# mismatches: "== main job: PASS", "FAIL (why)", or "not possible (why)"
# where the kernel has no shape for the mode (6.1 without the JIT).
loader_jobs() {
	[ -x /loader ] || { echo "== main job: FAIL (no loader in the guest)"; return; }
	/loader --keys $VM_KEYS --lookups 20000 --scans 20 --threads 2 -j >/tmp/run.json 2>/tmp/run.err
	rc=\$?
	if grep -q 'no program shape can walk a node' /tmp/run.err; then
		echo "== main job: not possible (\$(grep -o 'this kernel has neither.*' /tmp/run.err | head -1))"
		return
	fi
	if [ \$rc != 0 ] || ! grep -q '"mismatches":0}\$' /tmp/run.json; then
		echo "== main job: FAIL (run: exit \$rc: \$(tail -1 /tmp/run.err))"
		return
	fi
	echo "== loader run: \$(grep -o '"loops":"[^"]*"' /tmp/run.json), exit 0, 0 mismatches"
	for img in /data/*.img.zst; do
		[ -f "\$img" ] || continue
		/loader image -j "\$img" >/tmp/image.json 2>/tmp/image.err
		rc=\$?
		if [ \$rc != 0 ] || ! grep -q '"mismatches":0,"btrees"' /tmp/image.json; then
			echo "== main job: FAIL (image \$img: exit \$rc: \$(tail -1 /tmp/image.err))"
			return
		fi
		echo "== loader image \$img: exit 0, 0 mismatches"
	done
	echo "== main job: PASS"
}
# kmod/'s module, where one was built for this kernel: the programs
# called from kernel C by two kthreads, every key checked ("== kmod: N keys
# compared, M mismatches, ...", "FAIL (why)", "not possible (why)" where
# no shape loads, or "none (why)"), then once more with the programs
# handed over by bpffs path.
kmod_job() {
	m=/kmod/\$(uname -r)/bkey_kmod.ko
	if [ ! -f "\$m" ]; then
		echo "== kmod: none (no module built for \$(uname -r))"
		return
	fi
	/loader kmod "\$m" >/tmp/kmod.out 2>/tmp/kmod.err
	rc=\$?
	if grep -q 'no supported shape' /tmp/kmod.err; then
		echo "== kmod: not possible (\$(tail -1 /tmp/kmod.err))"
		return
	fi
	cat /tmp/kmod.out
	if [ \$rc != 0 ]; then
		echo "== kmod: FAIL (exit \$rc: \$(tail -1 /tmp/kmod.err))"
		dmesg | grep bkey_kmod | tail -5
		return
	fi
	if ! /loader kmod --pin /sys/fs/bpf --stress-ms 300 --rounds 3 "\$m" >/tmp/kmod-pin.out 2>&1; then
		echo "== kmod: FAIL (by bpffs path: \$(tail -1 /tmp/kmod-pin.out))"
		return
	fi
	echo "== kmod by bpffs path: \$(head -1 /tmp/kmod-pin.out)"
	# the check itself: a bit flipped in the module must be reported
	/loader kmod --flip-key 3 --stress-ms 100 --rounds 1 "\$m" >/tmp/kmod-flip.out 2>&1
	rc=\$?
	if [ \$rc != 1 ] || ! head -1 /tmp/kmod-flip.out | grep -q ', [1-9][0-9]* mismatches,'; then
		echo "== kmod: FAIL (a flipped bit went unreported: exit \$rc: \$(head -1 /tmp/kmod-flip.out))"
		return
	fi
	echo "== kmod self-test: a flipped bit is caught (\$(head -1 /tmp/kmod-flip.out | grep -o '[0-9]* mismatches'), exit 1)"
	echo "== \$(head -1 /tmp/kmod.out)"
}
# riscv64's JIT is off by default: switch it on (the suite's jit=1 line and
# its jited_len > 0 checks tell whether it really is)
echo 1 >/proc/sys/net/core/bpf_jit_enable 2>/dev/null
echo "== jit on (bpf_jit_enable=\$(cat /proc/sys/net/core/bpf_jit_enable))"
BKEY_RANDOM_FORMATS=$VM_RANDOM_FORMATS BKEY_CORRUPTIONS=$VM_CORRUPTIONS /test_progs $VM_TEST_ARGS
echo "== rc \$?"
loader_jobs
kmod_job
if echo 0 >/proc/sys/net/core/bpf_jit_enable 2>/dev/null &&
   [ "\$(cat /proc/sys/net/core/bpf_jit_enable)" = 0 ]; then
	echo "== jit off (interpreter)"
	BKEY_RANDOM_FORMATS=$VM_RANDOM_FORMATS BKEY_CORRUPTIONS=$VM_CORRUPTIONS /test_progs $VM_TEST_ARGS
	echo "== rc \$?"
	loader_jobs
	kmod_job
else
	echo "== jit off: not allowed (JIT always on)"
fi
echo "== done"
sync
poweroff -f
EOF
	chmod +x "$root/init"
	(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$OUT/initrd-$VM_ARCH.gz"
}

# KVM only where it works: vmx/svm in the CPU flags and a probe boot.
pick_accel() {
	local k=$1
	case "$VM_ARCH" in
	arm64) echo "tcg cortex-a72"; return ;;	# -cpu max is 3-4x slower (pointer auth)
	riscv64) echo "tcg rv64"; return ;;
	esac
	if grep -qE 'vmx|svm' /proc/cpuinfo && [ -w /dev/kvm ]; then
		if boot "$k" kvm host 120 "$OUT/probe" && grep -q '^== done' "$OUT/probe/result.txt"; then
			echo "kvm host"
			return
		fi
		log ACCEL "KVM probe boot failed: TCG"
	fi
	echo "tcg max"
}

# boot VMLINUZ ACCEL CPU TIMEOUT DIR: the guest's result in DIR/result.txt
boot() {
	local k=$1 accel=$2 cpu=$3 t=$4 dir=$5
	mkdir -p "$dir"
	: >"$dir/result.txt"
	if [ "$VM_ARCH" = arm64 ]; then
		timeout --kill-after=10 "$t" qemu-system-aarch64 -M virt -cpu "$cpu" -accel "$accel" \
			-m 2048 -smp 2 -nodefaults -no-reboot -kernel "$k" \
			-initrd "$OUT/initrd-$VM_ARCH.gz" -append "console=ttyAMA0 panic=-1 quiet" \
			-display none -monitor none -serial "file:$dir/console.log" \
			-device pci-serial,chardev=res -chardev "file,id=res,path=$dir/result.txt" || true
		return
	fi
	if [ "$VM_ARCH" = riscv64 ]; then
		# -bios default: qemu's OpenSBI; -kernel takes Debian's vmlinuz as
		# is (an uncompressed Image with an EFI header)
		timeout --kill-after=10 "$t" qemu-system-riscv64 -M virt -bios default -cpu "$cpu" \
			-accel "$accel" -m 2048 -smp 2 -nodefaults -no-reboot -kernel "$k" \
			-initrd "$OUT/initrd-$VM_ARCH.gz" -append "console=ttyS0 panic=-1 quiet" \
			-display none -monitor none -serial "file:$dir/console.log" \
			-device pci-serial,chardev=res -chardev "file,id=res,path=$dir/result.txt" || true
		return
	fi
	timeout --kill-after=10 "$t" qemu-system-x86_64 -machine "accel=$accel" -cpu "$cpu" \
		-m 2048 -smp 2 -kernel "$k" -initrd "$OUT/initrd-$VM_ARCH.gz" \
		-append "console=ttyS0 panic=-1 quiet" -display none -no-reboot -monitor none \
		-serial "file:$dir/console.log" -serial "file:$dir/result.txt" || true
}

summary_of() {
	local f=$1
	awk '/^== kernel/ {k=$3}
	     /^== jit on/ {m="jit"} /^== jit off \(/ {m="interpreter"}
	     /passed, .* failed/ {r[m]=$0}
	     /^== jit off: not allowed/ {r["interpreter"]="not allowed (JIT always on)"}
	     END {printf "%s: jit: %s | interpreter: %s\n", k, r["jit"] ? r["jit"] : "no result",
		  r["interpreter"] ? r["interpreter"] : "no result"}' "$f"
}

# The JIT run must have the JIT: the sysctl reads 1 and, where the suite
# probed the kernel, its probe saw jit=1 (a program's jited_len > 0).  The
# interpreter run must not (jit=0, or no kernel line where no shape loads:
# 6.1 without the JIT).
jit_check() {
	awk '/^== jit on/ {m="jit"; on = $0 ~ /bpf_jit_enable=[12]\)/}
	     /^== jit off \(/ {m="interpreter"; interp=1} /^== rc/ {m=""}
	     m != "" && /^kernel: .* jit=[01],/ {match($0, /jit=[01]/); j[m]=substr($0, RSTART+4, 1)}
	     END {
		if (!on) { print "the JIT run: bpf_jit_enable is not 1"; bad=1 }
		if (j["jit"] == "0") { print "the JIT run did not JIT (probe: jit=0)"; bad=1 }
		if (interp && j["interpreter"] == "1") { print "the interpreter run JIT'"'"'d (probe: jit=1)"; bad=1 }
		exit bad
	     }' "$1"
}

# The loader's jobs per mode: "jit: PASS | interpreter: ...".
main_job_of() {
	awk '{sub(/\r$/, "")}
	     /^== jit on/ {m="jit"} /^== jit off \(/ {m="interpreter"}
	     /^== jit off: not allowed/ {r["interpreter"]="not allowed (JIT always on)"}
	     /^== main job: / {sub(/^== main job: /, ""); r[m]=$0}
	     END {printf "jit: %s | interpreter: %s\n", r["jit"] ? r["jit"] : "no result",
		  r["interpreter"] ? r["interpreter"] : "no result"}' "$1"
}

# The JIT run's program sizes per example format: xlated insns/JIT bytes.
sizes_of() {
	awk '/^== jit on/ {m=1} /^== rc/ {m=0}
	     m && / xlated insns, [0-9]+ JIT bytes/ {s = s sprintf(" %s %s/%s", $1, $3, $6)}
	     END {print s ? s : " none"}' "$1"
}

# Each run's bpf/C ratios per example format (kernel/speed_vs_c): TCG
# times are relative only, so only the ratio is shown.
speeds_of() {
	awk '{sub(/\r$/, "")}
	     /^== jit on/ {m="jit"} /^== jit off \(/ {m="interpreter"} /^== rc/ {m=""}
	     m && / speed: bpf .* bpf\/C / {s[m] = s[m] sprintf(" %s %s", $1, $NF)}
	     END {printf " jit%s; interpreter%s\n", s["jit"] ? s["jit"] : " none",
		  s["interpreter"] ? s["interpreter"] : " none"}' "$1"
}

# The module's line per mode: "jit: kmod: N keys compared, ... | interpreter: ...".
kmod_of() {
	awk '{sub(/\r$/, "")}
	     /^== jit on/ {m="jit"} /^== jit off \(/ {m="interpreter"}
	     /^== jit off: not allowed/ {r["interpreter"]="not allowed (JIT always on)"}
	     /^== kmod: / {sub(/^== kmod: /, ""); r[m]=$0}
	     END {printf "%s | interpreter: %s\n", r["jit"] ? r["jit"] : "no result",
		  r["interpreter"] ? r["interpreter"] : "no result"}' "$1"
}

main() {
	local series k accel cpu fail=0 t0 line
	mkdir -p "$OUT"
	# the modules first: the initrd carries one per kernel
	local kfail=0 pkg
	for series in $KERNELS; do
		k=$(fetch_kernel "$series")
		read -r pkg _ <"${k%/vmlinuz}/package"
		build_kmod "$pkg" || { [ $? = 2 ] || kfail=1; }
	done
	make_initrd
	read -r accel cpu < <(pick_accel "$(fetch_kernel "${KERNELS%% *}")")
	log ACCEL "$accel (-cpu $cpu)"
	for series in $KERNELS; do
		k=$(fetch_kernel "$series")
		t0=$(date +%s)
		# the exact build, before it boots: a hang or a failure names it
		echo "vmtest $VM_ARCH $series: kernel $(cat "${k%/vmlinuz}/package")"
		log BOOT "$VM_ARCH $series"
		local run=$OUT/run-$DEB_ARCH-$series
		boot "$k" "$accel" "$cpu" "$VM_TIMEOUT" "$run"
		line=$(summary_of "$run/result.txt")
		echo "vmtest $VM_ARCH $series: $line ($(( $(date +%s) - t0 )) s)"
		echo "vmtest $VM_ARCH $series: sizes (xlated/JIT bytes):$(sizes_of "$run/result.txt")"
		echo "vmtest $VM_ARCH $series: unpack bpf/generic C (TCG, relative):$(speeds_of "$run/result.txt")"
		echo "vmtest $VM_ARCH $series: main job: $(main_job_of "$run/result.txt")"
		pkg=$(cut -d' ' -f1 "${k%/vmlinuz}/package")
		local abi=${pkg#linux-image-} kline
		if [ -n "${KMOD_WHY[$abi]:-}" ]; then
			kline="not built: ${KMOD_WHY[$abi]}"
		else
			kline=$(kmod_of "$run/result.txt")
		fi
		echo "vmtest $VM_ARCH $series: kmod: $kline"
		if ! jit_check "$run/result.txt" >&2 ||
		   ! main_job_of "$run/result.txt" | grep -q '^jit: PASS |' ||
		   grep -q '^== main job: FAIL' "$run/result.txt" ||
		   ! grep -q '^== done' "$run/result.txt" ||
		   grep -qE '^[0-9]+ passed, [1-9][0-9]* failed' "$run/result.txt" ||
		   grep -qE '^== rc [1-9]' "$run/result.txt" ||
		   { [ -z "${KMOD_WHY[$abi]:-}" ] &&
		     ! kmod_of "$run/result.txt" | grep -qE '^[0-9]+ keys compared, 0 mismatches,'; } ||
		   grep -q '^== kmod: FAIL' "$run/result.txt"; then
			echo "vmtest $VM_ARCH $series: FAILED; see $run/{result,console}.txt" >&2
			grep -E 'FAIL|SKIP' "$run/result.txt" | head -20 >&2 || true
			# the verifier's reasons for rejected programs, each once
			grep -B1 '^processed [0-9]* insns' "$run/result.txt" |
				grep -vE '^processed|^--' | sort | uniq -c | sort -rn |
				sed 's/^/  verifier: /' | head -5 >&2 || true
			fail=1
		fi
	done
	[ $kfail = 0 ] || echo "vmtest $VM_ARCH: a module failed to build (see above)" >&2
	return $(( fail | kfail ))
}

main
