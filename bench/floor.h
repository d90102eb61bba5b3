/* SPDX-License-Identifier: GPL-2.0 */
#ifndef BENCH_FLOOR_H
#define BENCH_FLOOR_H

#include <stdio.h>

/*
 * make bench's search floor (bench/floor.c): a clang-built BPF binary
 * search and chains of dependent loads against the same in C over the
 * same map, at three footprints.  Prints a table, and its rows as JSON
 * objects to @json (if not NULL).  0, or 1 if it cannot run or an answer
 * is wrong.
 */
int floor_table(FILE *json);

#endif
