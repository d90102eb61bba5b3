// SPDX-License-Identifier: GPL-2.0
/*
 * The default run: filesystem-like nodes of 1024 keys, each node's format
 * computed from its keys and its min/max positions (spec 8), unpacked in
 * the kernel by the format's generated program, checked key by key against
 * the C reference, and timed beside it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "demo.h"
#include "gen.h"
#include "util.h"

#define NODE_KEYS	1024

struct node {
	const char		*name;
	struct bkey_format	f;
	uint64_t		*words;
	uint32_t		nr_words;
	unsigned		nr_keys, nr_unpacked;
};

static struct bkey mk(uint64_t inode, uint64_t offset, uint32_t snap, uint32_t size,
		      unsigned val, uint8_t type)
{
	struct bkey k = {
		.u64s = BKEY_U64s + val, .format_nw = KEY_FORMAT_CURRENT, .type = type,
		.size = size, .snapshot = snap, .offset = offset, .inode = inode,
	};
	return k;
}

static int cmp_keys(const void *a, const void *b)
{
	const struct bkey *x = a, *y = b;

	return bpos_cmp((struct bpos){ x->inode, x->offset, x->snapshot },
			(struct bpos){ y->inode, y->offset, y->snapshot });
}

/* Keys of one node, sorted; the node's format from keys + min/max. */
static void make_keys(const char *kind, uint64_t *seed, struct bkey *k)
{
	unsigned i;
	uint64_t end = 4096 + bk_rnd(seed) % 100000;

	for (i = 0; i < NODE_KEYS; i++) {
		if (!strcmp(kind, "extents")) {
			uint32_t size = 1 + bk_rnd(seed) % 128;

			end += size + (bk_rnd(seed) % 4 ? 0 : bk_rnd(seed) % 4096);
			k[i] = mk(4096, end, UINT32_MAX, size, 3, 6 /* extent */);
		} else if (!strcmp(kind, "extents_inodes")) {
			uint32_t size = 1 + bk_rnd(seed) % 128;

			k[i] = mk(4096 + bk_rnd(seed) % 200, bk_rnd(seed) % (1 << 26) + size,
				  UINT32_MAX, size, 3, 6);
		} else if (!strcmp(kind, "dirents")) {
			k[i] = mk(10006 + bk_rnd(seed) % 3000, bk_rnd(seed), UINT32_MAX, 0,
				  2 + bk_rnd(seed) % 4, 8 /* dirent */);
		} else if (!strcmp(kind, "inodes")) {
			k[i] = mk(0, 4096 + i * (1 + bk_rnd(seed) % 8), UINT32_MAX, 0,
				  8 + bk_rnd(seed) % 8, 23 /* inode_v3 */);
		} else {	/* anything, in the widest format */
			k[i] = mk(bk_rnd(seed), bk_rnd(seed), bk_rnd(seed), bk_rnd(seed), bk_rnd(seed) % 5, 1);
			k[i].version_hi = bk_rnd(seed);
			k[i].version_lo = bk_rnd(seed);
		}
	}
	qsort(k, NODE_KEYS, sizeof(*k), cmp_keys);
}

static int build_node(struct node *n, const char *kind, uint64_t seed)
{
	struct bkey *k = calloc(NODE_KEYS, sizeof(*k));
	struct bkey_format_state s;
	uint32_t pos = 0, cap = NODE_KEYS * (BKEY_U64s + 16);
	unsigned i, j;

	n->words = calloc(cap, 8);
	if (!k || !n->words) {
		free(k);
		return -ENOMEM;
	}
	n->name = kind;
	make_keys(kind, &seed, k);
	bkey_format_init(&s);
	/* node min: the start of the first inode; max: the last key */
	bkey_format_add_pos(&s, (struct bpos){ k[0].inode, 0, 0 });
	bkey_format_add_pos(&s, (struct bpos){ k[NODE_KEYS - 1].inode, k[NODE_KEYS - 1].offset,
					       k[NODE_KEYS - 1].snapshot });
	for (i = 0; i < NODE_KEYS; i++)
		bkey_format_add_key(&s, &k[i]);
	n->f = !strcmp(kind, "current") ? bkey_format_current :
	       bkey_format_done(&s, BKEY_FORMAT_ERA_CURRENT);

	for (i = 0; i < NODE_KEYS; i++) {
		unsigned val = k[i].u64s - BKEY_U64s, kw = n->f.key_u64s;

		if (bkey_pack_key(&n->f, &k[i], n->words + pos, NULL)) {
			memcpy(n->words + pos, &k[i], sizeof(k[i]));	/* stored unpacked */
			kw = BKEY_U64s;
			n->nr_unpacked++;
		}
		for (j = 0; j < val; j++)
			n->words[pos + kw + j] = bk_rnd(&seed);
		pos += kw + val;
	}
	n->nr_words = pos;
	n->nr_keys = NODE_KEYS;
	free(k);
	return 0;
}

/* The C reference over the node, ns per key (median of rounds). */
static double ref_ns_per_key(const struct node *n, struct bkey *out)
{
	double t[15];
	unsigned r, rep;

	for (r = 0; r < 15; r++) {
		double t0 = bk_now_ns();

		for (rep = 0; rep < 20; rep++)
			bkey_unpack_stream(&n->f, n->words, n->nr_words, out);
		t[r] = (bk_now_ns() - t0) / 20 / n->nr_keys;
	}
	return bk_median(t, 15);
}

static int run_node(const struct node *n, struct bk_runtime *rt, const struct bk_features *ft,
		    struct demo_row *row, char *log, size_t log_len)
{
	struct bk_gen_opts o = {
		.shape = ft->best, .walk = ft->best_walk, .chunk = 1,
		.ctl_fd = rt->ctl_fd, .in_fd = rt->in_fd, .out_fd = rt->out_fd,
		.strict_align = bk_strict_align_default(),
	};
	struct bk_prog p = {};
	struct bkey *ref = calloc(NODE_KEYS, sizeof(*ref));
	struct bk_loaded l = { .fd = -1 };
	double prep[21];
	uint32_t nr_keys, stop, dur, pos = 0, status;
	unsigned i, r;
	int ret = 0;

	memset(row, 0, sizeof(*row));
	if (!ref)
		return -ENOMEM;
	row->name = n->name;
	row->f = n->f;
	row->keys = n->nr_keys;
	row->unpacked = n->nr_unpacked;
	for (r = 0; r < 21; r++) {
		double t0 = bk_now_ns();

		bk_prog_unload(&l);
		ret = bk_gen_unpack(&n->f, &o, &p, NULL);
		if (!ret)
			ret = bk_prog_load(&p, &l, log, log_len);
		prep[r] = (bk_now_ns() - t0) / 1e3;
		if (ret)
			goto out;
	}
	row->prepare_us = bk_median(prep, 21);
	snprintf(row->prog, sizeof(row->prog), "%s", p.name);
	row->xlated = l.xlated_insns;
	row->jited = l.jited_bytes;

	ret = bk_unpack_words(&l, rt, n->words, n->nr_words, &status, &nr_keys, &stop);
	if (!ret && status != BK_OK)
		ret = -EIO;
	if (ret)
		goto out;
	row->ref_ns = ref_ns_per_key(n, ref);
	for (i = 0; i < nr_keys; i++) {
		row->mismatches += !!memcmp(&rt->out[i], &ref[i], sizeof(ref[i]));
		pos += ((const uint8_t *)(n->words + pos))[0];
	}
	row->mismatches += n->nr_keys - nr_keys;

	/* kernel-measured: many runs over the same node, median of rounds;
	 * bk_unpack_words() left the node (and its key table) in the maps */
	{
		double t[15];

		for (r = 0; r < 15; r++) {
			ret = o.walk == BK_WALK_TABLE ? bk_run_keys(&l, rt, 0, n->nr_keys, 200, &dur) :
			      bk_run_words(&l, rt, 0, n->nr_words, 0, 200, &dur);
			if (ret)
				goto out;
			t[r] = (double)dur / n->nr_keys;
		}
		row->bpf_ns = bk_median(t, 15);
	}
out:
	bk_prog_unload(&l);
	bk_prog_release(&p);
	free(ref);
	return ret;
}

static const char *const kinds[] = {
	"extents", "extents_inodes", "dirents", "inodes", "current",
};

int demo_formats(struct bkey_format *f, const char **names, unsigned max)
{
	unsigned i, n = 0;

	for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]) && n < max; i++) {
		struct node nd = {};

		if (build_node(&nd, kinds[i], 0x5eed + i))
			return -ENOMEM;
		f[n] = nd.f;
		names[n++] = kinds[i];
		free(nd.words);
	}
	return n;
}

int demo_run(struct demo_report *rep, char *log, size_t log_len)
{
	struct bk_runtime rt = { .ctl_fd = -1, .in_fd = -1, .out_fd = -1 };
	unsigned i;
	int ret;

	memset(rep->rows, 0, sizeof(rep->rows));
	rep->nr_rows = 0;
	ret = bk_probe_features(&rep->ft);
	if (ret)
		return ret;
	ret = bk_runtime_open(&rt);
	if (ret)
		return ret;
	for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]) && !ret; i++) {
		struct node n = {};

		ret = build_node(&n, kinds[i], 0x5eed + i);
		if (!ret)
			ret = run_node(&n, &rt, &rep->ft, &rep->rows[i], log, log_len);
		if (!ret)
			rep->nr_rows++;
		free(n.words);
	}
	bk_runtime_close(&rt);
	return ret;
}
