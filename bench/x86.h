/* SPDX-License-Identifier: GPL-2.0 */
/* Benchmark only: the emitted x86-64 loop, for comparison. */
#ifndef BENCH_X86_H
#define BENCH_X86_H

#include "gen.h"

typedef struct bkey *(*x86_unpack_fn)(const void *in, const void *in_end, struct bkey *out);
typedef struct bkey *(*x86_table_fn)(const uint16_t *tab, const uint16_t *tab_end,
				     struct bkey *out, const uint64_t *in);

struct x86_fn {
	void		*code;
	size_t		len;		/* bytes of machine code */
	size_t		map_len;
	x86_unpack_fn	run;		/* emitted with table = false */
	x86_table_fn	run_table;	/* emitted with table = true */
};

/* The loop of @plan's format, walking by u64s or (@table) by key table. */
int x86_emit(const struct bk_plan *plan, bool table, struct x86_fn *fn);
void x86_free(struct x86_fn *fn);

#endif
