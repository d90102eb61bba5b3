/* SPDX-License-Identifier: GPL-2.0 */
/* Benchmark only: the emitted x86-64 loop, for comparison. */
#ifndef BENCH_X86_H
#define BENCH_X86_H

#include "gen.h"

typedef struct bkey *(*x86_unpack_fn)(const void *in, const void *in_end, struct bkey *out);

struct x86_fn {
	void		*code;
	size_t		len;		/* bytes of machine code */
	size_t		map_len;
	x86_unpack_fn	run;
};

int x86_emit(const struct bk_plan *plan, struct x86_fn *fn);
void x86_free(struct x86_fn *fn);

#endif
