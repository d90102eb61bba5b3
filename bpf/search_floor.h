/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The search floor's maps, shared by bpf/search_floor.bpf.c and
 * bench/floor.c: nodes of sorted u32 keys, one 64 KiB node per element,
 * and a run's queries and answers.
 */
#ifndef BPF_SEARCH_FLOOR_H
#define BPF_SEARCH_FLOOR_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* key i of node n is FL_KEY_STEP * (n * FL_NODE_KEYS + i): below 2^32 */
#define FL_KEY_STEP	7
#define FL_NODE_KEYS	16384		/* u32 keys: a 64 KiB node */
#define FL_MAX_NODES	1024		/* 64 MiB */
#define FL_LINE_WORDS	16		/* u32 per 64-byte line */
#define FL_NODE_LINES	(FL_NODE_KEYS / FL_LINE_WORDS)
#define FL_BATCH	1024		/* a power of two: the program masks by it */
#define FL_STEPS	15		/* ends a search of [0, FL_NODE_KEYS) */
#define FL_HOPS		1024		/* dependent loads per chain per run */
#define FL_CHAINS	4

struct fl_node {
	__u32	k[FL_NODE_KEYS];
};

struct fl_query {
	__u32	node;
	__u32	key;
};

/* One run: its queries in, its answers out; lo and hi of the search under way. */
struct fl_run {
	struct fl_query	q[FL_BATCH];
	__u32		answer[FL_BATCH];
	__u32		nq;
	__u32		lo, hi;
	__u32		chains;			/* chase: 1 or FL_CHAINS chains at once */
	__u32		at[FL_CHAINS];		/* chase: each chain's line, in and out */
};

#endif
