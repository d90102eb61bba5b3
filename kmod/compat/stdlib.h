/* SPDX-License-Identifier: GPL-2.0 */
#ifndef BK_KMOD_STDLIB_H
#define BK_KMOD_STDLIB_H
#include <linux/kernel.h>
/* the format parser only; the module never parses text formats */
#define strtoull(s, end, base)	simple_strtoull(s, end, base)
#endif
