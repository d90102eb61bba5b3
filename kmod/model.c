// SPDX-License-Identifier: GPL-2.0
/* The model, the one the userspace tools use, compiled into the module. */
#include "../bkey/bkey.c"
