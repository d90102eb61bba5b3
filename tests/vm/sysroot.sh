#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# A sysroot of Debian's static libraries and busybox-static for ARCH, for
# the cross-built selftest binary of make vmtest ARCH=...:
#   tests/vm/sysroot.sh ARCH OUTDIR   (prints the sysroot's path)
# arm64: bookworm's packages.  riscv64: sid's, the only suite with a working
# riscv64 index here; its libraries were built against glibc 2.38 and need
# tests/vm/isoc23.c with bookworm's 2.36 cross glibc.
set -euo pipefail
ARCH=$1
OUT=$(readlink -f "$2")/vm
S=$OUT/sysroot-$ARCH
A=$OUT/apt-$ARCH
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
MIRROR=${MIRROR:-http://deb.debian.org/debian}

if [ -f "$S/.done" ]; then
	echo "$S"
	exit 0
fi
case "$ARCH" in
arm64) SUITE=bookworm ;;
riscv64) SUITE=sid ;;
*) echo "sysroot.sh: unsupported ARCH $ARCH (arm64, riscv64)" >&2; exit 2 ;;
esac
mkdir -p "$A/lists/partial" "$A/cache/archives/partial" "$A/debs" "$S"
: >"$A/status"
if [ "$SUITE" = sid ]; then
	echo "deb [signed-by=$KEYRING] $MIRROR sid main" >"$A/sources.list"
else
	{
		echo "deb [signed-by=$KEYRING] $MIRROR bookworm main"
		echo "deb [signed-by=$KEYRING] ${MIRROR%/debian}/debian-security bookworm-security main"
		echo "deb [signed-by=$KEYRING] $MIRROR trixie main"
		echo "deb [signed-by=$KEYRING] $MIRROR trixie-backports main"
	} >"$A/sources.list"
fi
APT=(-o "Dir::Etc::SourceList=$A/sources.list" -o "Dir::Etc::SourceParts=/nonexistent"
     -o "Dir::State::Lists=$A/lists" -o "Dir::Cache=$A/cache" -o "Dir::State::status=$A/status"
     -o "APT::Architecture=$ARCH" -o "APT::Architectures=$ARCH" -o "APT::Sandbox::User=root" -q)
apt-get "${APT[@]}" update >/dev/null
(cd "$A/debs" && apt-get "${APT[@]}" download libbpf-dev/$SUITE libelf-dev/$SUITE \
	zlib1g-dev/$SUITE libzstd-dev/$SUITE busybox-static/$SUITE >/dev/null)
for d in "$A"/debs/*.deb; do
	dpkg -x "$d" "$S"
done
# merged /usr (sid) puts busybox in usr/bin
if [ ! -e "$S/bin/busybox" ] && [ -x "$S/usr/bin/busybox" ]; then
	mkdir -p "$S/bin"
	ln -s ../usr/bin/busybox "$S/bin/busybox"
fi
touch "$S/.done"
echo "$S"
