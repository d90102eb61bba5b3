/* SPDX-License-Identifier: GPL-2.0 */
#ifndef BK_KMOD_INTTYPES_H
#define BK_KMOD_INTTYPES_H
#include "stdint.h"
/* the kernel's u64 is unsigned long long on every architecture */
#define PRIu64	"llu"
#define PRIx64	"llx"
#define PRId64	"lld"
#endif
