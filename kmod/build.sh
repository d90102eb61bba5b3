#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Builds bkey_kmod.ko against a kernel's headers, out of the source tree.
#
#   kmod/build.sh KDIR OUTDIR [MAKE_ARGS...]
#
# KDIR is a kernel build directory (/lib/modules/$(uname -r)/build, or
# Debian's linux-headers unpacked); the module and the model it compiles
# in (bkey/, gen/abi.h) are copied to OUTDIR/src and built there, and the
# module lands in OUTDIR/bkey_kmod.ko.  MAKE_ARGS go to kbuild (ARCH=arm64
# CROSS_COMPILE=aarch64-linux-gnu-, say).
#
# BK_CHROOT=DIR runs kbuild inside that chroot (a newer Debian whose
# compiler built the kernel); KDIR and OUTDIR must then be inside DIR and
# are given as the host sees them.  /proc is mounted there for the build.
set -euo pipefail

[ $# -ge 2 ] || { echo "usage: $0 KDIR OUTDIR [MAKE_ARGS...]" >&2; exit 2; }
KDIR=$(readlink -f "$1")
mkdir -p "$2"
OUTDIR=$(readlink -f "$2")
shift 2
SRC=$(cd "$(dirname "$0")/.." && pwd)
CHROOT=${BK_CHROOT:+$(readlink -f "$BK_CHROOT")}

[ -e "$KDIR/Makefile" ] || { echo "kmod: $KDIR: no kernel build directory (no Makefile)" >&2; exit 1; }
rm -rf "$OUTDIR/src"
mkdir -p "$OUTDIR/src/gen"
cp -r "$SRC/kmod" "$SRC/bkey" "$OUTDIR/src/"
cp "$SRC/gen/abi.h" "$OUTDIR/src/gen/"
rm -f "$OUTDIR/bkey_kmod.ko"

if [ -z "$CHROOT" ]; then
	make -s -C "$KDIR" M="$OUTDIR/src/kmod" "$@" modules
else
	case "$KDIR/ $OUTDIR/" in
	"$CHROOT"/*" $CHROOT"/*) ;;
	*) echo "kmod: KDIR and OUTDIR must be inside BK_CHROOT $CHROOT" >&2; exit 2 ;;
	esac
	if ! mountpoint -q "$CHROOT/proc"; then
		mount -t proc proc "$CHROOT/proc"
		trap 'umount "$CHROOT/proc" 2>/dev/null || true' EXIT
	fi
	chroot "$CHROOT" make -s -C "${KDIR#"$CHROOT"}" M="${OUTDIR#"$CHROOT"}/src/kmod" "$@" modules
fi
cp "$OUTDIR/src/kmod/bkey_kmod.ko" "$OUTDIR/"
