#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# A sysroot of Debian's static libraries and busybox-static for ARCH, for
# the cross-built selftest binary of make vmtest ARCH=...:
#   tests/vm/sysroot.sh ARCH OUTDIR   (prints the sysroot's path)
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
mkdir -p "$A/lists/partial" "$A/cache/archives/partial" "$A/debs" "$S"
: >"$A/status"
{
	echo "deb [signed-by=$KEYRING] $MIRROR bookworm main"
	echo "deb [signed-by=$KEYRING] ${MIRROR%/debian}/debian-security bookworm-security main"
	echo "deb [signed-by=$KEYRING] $MIRROR trixie main"
	echo "deb [signed-by=$KEYRING] $MIRROR trixie-backports main"
} >"$A/sources.list"
APT=(-o "Dir::Etc::SourceList=$A/sources.list" -o "Dir::Etc::SourceParts=/nonexistent"
     -o "Dir::State::Lists=$A/lists" -o "Dir::Cache=$A/cache" -o "Dir::State::status=$A/status"
     -o "APT::Architecture=$ARCH" -o "APT::Architectures=$ARCH" -o "APT::Sandbox::User=root" -q)
apt-get "${APT[@]}" update >/dev/null
(cd "$A/debs" && apt-get "${APT[@]}" download libbpf-dev/bookworm libelf-dev/bookworm \
	zlib1g-dev/bookworm libzstd-dev/bookworm busybox-static/bookworm >/dev/null)
for d in "$A"/debs/*.deb; do
	dpkg -x "$d" "$S"
done
touch "$S/.done"
echo "$S"
