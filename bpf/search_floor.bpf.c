// SPDX-License-Identifier: GPL-2.0
/*
 * The search floor (make bench, bench/floor.c): the plainest BPF binary
 * search clang makes, and the plainest chain of dependent loads, over
 * nodes that C reads through the same map's mmap.  What the kernel's BPF
 * takes over C for a search as such, with no generator in between, is
 * the floor under the lookup's ratio (user/run.c).
 *
 * fl_search: for each query, the first key >= q.key in node q.node.  A
 * loop over a node's keys with lo and hi in registers makes the verifier
 * walk every path (each step forks it), so they go through the run's map
 * value, as the generated search's do (gen/search.c); bpf_loop() calls
 * one query per callback.  Returns 0 once every query is answered.
 * fl_chase: FL_HOPS loads, each at the line the last one read, in one
 * chain or FL_CHAINS at once.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "search_floor.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, FL_MAX_NODES);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct fl_node);
} fl_nodes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct fl_run);
} fl_run SEC(".maps");

static long search_one(__u32 i, void *ctx)
{
	struct fl_run *run = *(struct fl_run **)ctx;
	volatile __u32 *lo = &run->lo, *hi = &run->hi;
	__u32 qi = i & (FL_BATCH - 1), node = run->q[qi].node, key = run->q[qi].key, s;
	struct fl_node *n = bpf_map_lookup_elem(&fl_nodes, &node);

	if (!n)
		return 1;
	*lo = 0;
	*hi = FL_NODE_KEYS;
	for (s = 0; s < FL_STEPS; s++) {
		__u32 l = *lo, h = *hi, mid;

		if (l >= h)
			break;
		mid = (l + h) >> 1;
		if (mid >= FL_NODE_KEYS)
			break;
		if (n->k[mid] >= key)
			*hi = mid;
		else
			*lo = mid + 1;
	}
	run->answer[qi] = *lo;
	return 0;
}

SEC("socket")
int fl_search(struct __sk_buff *skb)
{
	__u32 zero = 0;
	struct fl_run *run = bpf_map_lookup_elem(&fl_run, &zero);

	if (!run)
		return 1;
	return bpf_loop(run->nq, search_one, &run, 0) == run->nq ? 0 : 1;
}

/* The u32 at the start of line @line (of all nodes' lines), or 0 past them. */
static __u32 line_word(__u32 line)
{
	__u32 node = line / FL_NODE_LINES;
	struct fl_node *n = bpf_map_lookup_elem(&fl_nodes, &node);

	if (!n)
		return 0;
	return n->k[(line % FL_NODE_LINES) * FL_LINE_WORDS];
}

SEC("socket")
int fl_chase(struct __sk_buff *skb)
{
	__u32 zero = 0, i;
	struct fl_run *run = bpf_map_lookup_elem(&fl_run, &zero);
	__u32 a, b, c, d;

	if (!run)
		return 1;
	a = run->at[0];
	b = run->at[1];
	c = run->at[2];
	d = run->at[3];
	if (run->chains == 1) {
		for (i = 0; i < FL_HOPS; i++)
			a = line_word(a);
	} else {
		for (i = 0; i < FL_HOPS; i++) {
			a = line_word(a);
			b = line_word(b);
			c = line_word(c);
			d = line_word(d);
		}
	}
	run->at[0] = a;
	run->at[1] = b;
	run->at[2] = c;
	run->at[3] = d;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
