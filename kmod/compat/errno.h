/* SPDX-License-Identifier: GPL-2.0 */
#ifndef BK_KMOD_ERRNO_H
#define BK_KMOD_ERRNO_H
#include <linux/errno.h>
/* the format parser's overflow check reads errno; the kernel has none */
static int errno __maybe_unused;
#endif
