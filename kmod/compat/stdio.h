/* SPDX-License-Identifier: GPL-2.0 */
#ifndef BK_KMOD_STDIO_H
#define BK_KMOD_STDIO_H
#include <linux/kernel.h>	/* snprintf */
#endif
