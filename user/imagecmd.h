/* SPDX-License-Identifier: GPL-2.0 */
#ifndef USER_IMAGECMD_H
#define USER_IMAGECMD_H

#include <stdio.h>

/* loader image: a real bcachefs image's btrees through BPF. */
int image_main(int argc, char **argv, const char *prog);
void image_usage(FILE *out, const char *prog);

#endif
