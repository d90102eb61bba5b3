/* SPDX-License-Identifier: GPL-2.0 */
#ifndef USER_CAPS_H
#define USER_CAPS_H

#include <stdbool.h>
#include <stddef.h>

bool bk_caps_ok(char *why, size_t len);
/* Is capability @cap (CAP_*) in the effective set? */
bool bk_have_cap(int cap);

#endif
