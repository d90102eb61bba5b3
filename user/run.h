/* SPDX-License-Identifier: GPL-2.0 */
#ifndef USER_RUN_H
#define USER_RUN_H

#include <stdio.h>

/* The main job: the built-in workload (loader with no command, or "run"). */
int run_main(int argc, char **argv, const char *prog);
void run_usage(FILE *out, const char *prog);

#endif
