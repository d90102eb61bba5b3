/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Benchmark only: one program per shape serving both lookup and scan
 * against the node cache's two (bench/combined.c).
 */
#ifndef BENCH_COMBINED_H
#define BENCH_COMBINED_H

#include <stdio.h>

#include "bkey.h"
#include "gen.h"

/*
 * One program of @lk's and @sc's bodies (may_goto shapes: no subprograms),
 * entered at a dispatch on the context's cb[1]: 0 runs the lookup (so
 * tail calls, which keep the context, stay lookups), else the scan.
 * -EOPNOTSUPP for programs with subprograms, -E2BIG if it does not fit.
 */
int bk_combine_progs(const struct bk_prog *lk, const struct bk_prog *sc, struct bk_prog *out);

/*
 * For each of @fmts at 4 and 64 KiB nodes: kernel memory, prepare time
 * and sizes of the two programs against the combined one, then a tree of
 * keys in the format's ranges looked up and scanned by both (answers
 * compared, kernel ns side by side).  Prints a table; rows into @json
 * (may be NULL) as a JSON array's elements.  Returns 0, or -errno (a
 * mismatch is -EIO).
 */
int combined_bench(const char *const *names, const struct bkey_format *fmts, unsigned n,
		   FILE *json);

#endif
