/* SPDX-License-Identifier: GPL-2.0 */
#ifndef BK_KMOD_STRING_H
#define BK_KMOD_STRING_H
#include <linux/string.h>
#endif
