/* SPDX-License-Identifier: GPL-2.0 */
#ifndef USER_KMODCMD_H
#define USER_KMODCMD_H

#include <stdio.h>

/* loader kmod: the generated programs called from kernel C (kmod/). */
int kmod_main(int argc, char **argv, const char *prog);
void kmod_usage(FILE *out, const char *prog);

#endif
