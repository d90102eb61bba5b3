/* SPDX-License-Identifier: GPL-2.0 */
/* The C library headers the model (bkey/bkey.c) includes, from the kernel's. */
#ifndef BK_KMOD_STDINT_H
#define BK_KMOD_STDINT_H
#include <linux/types.h>
#include <linux/limits.h>
#ifndef UINT64_MAX
#define UINT64_MAX	U64_MAX
#endif
#ifndef INT8_MIN
#define INT8_MIN	S8_MIN
#endif
#ifndef UINT32_MAX
#define UINT32_MAX	U32_MAX
#endif
#endif
