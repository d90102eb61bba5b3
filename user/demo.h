/* SPDX-License-Identifier: GPL-2.0 */
#ifndef USER_DEMO_H
#define USER_DEMO_H

#include "bkey.h"
#include "gen.h"

struct demo_row {
	const char		*name;
	struct bkey_format	f;
	char			prog[16];
	unsigned		keys, unpacked, mismatches;
	unsigned		xlated, jited;
	double			prepare_us;	/* median: generate + verify + JIT */
	double			bpf_ns;		/* per key, kernel-measured */
	double			ref_ns;		/* per key, the C reference */
};

struct demo_report {
	struct bk_features	ft;
	struct demo_row		rows[8];
	unsigned		nr_rows;
};

/* The formats of the built-in nodes (the default run's); returns how many. */
int demo_formats(struct bkey_format *f, const char **names, unsigned max);

/* Builds, loads, checks and times the built-in nodes. */
int demo_run(struct demo_report *rep, char *log, size_t log_len);

#endif
