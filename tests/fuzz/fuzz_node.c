// SPDX-License-Identifier: GPL-2.0
/*
 * Node images in the nodes map, as a corrupted or hostile node would be:
 * the generated search program must stop with BK_OK or an error code,
 * never run away, and on every image whose keys are all readable its
 * answer must equal the C algorithm's on the same bytes.  Needs root.
 * Input: format selector, search position (20 bytes), nr_keys (2 bytes),
 * then the node's words and key table.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "btree.h"
#include "gen.h"

#define NODE_SIZE	512
#define NODE_WORDS	(NODE_SIZE / 8)

static const struct bkey_format formats[] = {
	{ 2, 6, { 0, 8, 32, 8, 0, 0 }, { 0x1000, 0, 0, 0, 0, 0 } },
	{ 2, 6, { 40, 40, 0, 12, 0, 0 }, { 0x100000000, 0, 0xffffffff, 0, 0, 0 } },
	{ 1, 6, { 0, 0, 0, 0, 0, 0 }, { 77, 1234, 1, 0, 0, 0 } },
	{ 5, 6, { 64, 64, 32, 32, 32, 64 }, { 0 } },
};
#define NR_FORMATS	(sizeof(formats) / sizeof(formats[0]))

static struct bk_lookup_rt lr;
static unsigned long kernel_runs, compared;	/* reported at exit */

static void report(void)
{
	fprintf(stderr, "fuzz_node: %lu kernel runs, %lu answers compared with C\n",
		kernel_runs, compared);
}
static struct bk_loaded progs[NR_FORMATS];
static void *img;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static struct bk_prog p;
	unsigned i;

	libbpf_set_print(NULL);
	if (bk_lookup_rt_open(&lr, NODE_SIZE, 1, 1)) {
		fprintf(stderr, "fuzz_node: needs root and bpf() (maps)\n");
		exit(1);
	}
	for (i = 0; i < NR_FORMATS; i++) {
		struct bk_search_opts o = { .node_size = NODE_SIZE, .ctl_fd = lr.ctl_fd,
					    .nodes_fd = lr.nodes_fd };

		if (bk_gen_search(&formats[i], &o, &p, NULL) || bk_prog_load(&p, &progs[i], NULL, 0)) {
			fprintf(stderr, "fuzz_node: cannot load the search programs (needs may_goto)\n");
			exit(1);
		}
	}
	img = lr.nodes;
	atexit(report);
	return 0;
}

/* Every key in the table readable: in the node, format byte 0 or 1. */
static bool readable(const struct bkey_format *f, const uint64_t *words, const uint16_t *tab,
		     uint32_t nr)
{
	uint32_t i;

	if (nr > NODE_WORDS)
		return false;
	for (i = 0; i < nr; i++) {
		unsigned fmt;

		if (tab[i] >= NODE_WORDS)
			return false;
		fmt = ((const uint8_t *)&words[tab[i]])[1] & 0x7f;
		if (fmt > 1 || tab[i] + (fmt ? BKEY_U64s : f->key_u64s) > NODE_WORDS)
			return false;
	}
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bk_node_hdr *h = img;
	uint8_t *words = (uint8_t *)img + BK_NODE_WORDS_OFF;
	uint16_t *tab = (uint16_t *)((uint8_t *)img + BK_NODE_WORDS_OFF + NODE_SIZE);
	const struct bkey_format *f;
	struct bk_search_ctl *c = lr.ctl;
	unsigned char pkt[64] = {};
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = pkt, .data_size_in = sizeof(pkt), .repeat = 1);
	size_t rest, tab_bytes = 2 * (NODE_WORDS + 1);
	uint16_t nr;

	if (size < 23)
		return 0;
	f = &formats[data[0] % NR_FORMATS];
	memset(img, 0, lr.node_value_size);
	memcpy(h->format, f, sizeof(*f));
	memcpy(&c->inode, data + 1, 8);
	memcpy(&c->offset, data + 9, 8);
	memcpy(&c->snapshot, data + 17, 4);
	memcpy(&nr, data + 21, 2);
	h->nr_keys = nr % (2 * NODE_WORDS);	/* sometimes more than fit */
	rest = size - 23;
	memcpy(words, data + 23, rest < NODE_SIZE ? rest : NODE_SIZE);
	if (rest > NODE_SIZE)
		memcpy(tab, data + 23 + NODE_SIZE, rest - NODE_SIZE < tab_bytes ? rest - NODE_SIZE : tab_bytes);
	c->node = 0;
	c->status = ~0u;
	if (bpf_prog_test_run_opts(progs[data[0] % NR_FORMATS].fd, &opts))
		__builtin_trap();
	kernel_runs++;
	if (c->status != BK_OK && c->status != BK_ERR_BAD_KEY)
		__builtin_trap();	/* never runs away (no LOOP_LIMIT), nothing else */
	if (c->status == BK_OK && c->idx > h->nr_keys)
		__builtin_trap();
	if (readable(f, (const uint64_t *)words, tab, h->nr_keys)) {
		struct bk_node n = {
			.f = *f, .nr_keys = h->nr_keys, .words = (uint64_t *)words, .tab = tab,
		};
		struct bpos pos = { c->inode, c->offset, c->snapshot };

		if (c->status != BK_OK || c->idx != bk_node_lower_bound(&n, pos))
			__builtin_trap();	/* a wrong answer */
		compared++;
	}
	return 0;
}
