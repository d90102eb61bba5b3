// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>

#include "nodecache.h"
#include "util.h"

/* A format's shape: what its programs are specialized on (gen/abi.h). */
static void shape_of(const struct bkey_format *f, uint8_t shape[BK_SHAPE_BYTES])
{
	shape[0] = f->key_u64s;
	memcpy(shape + 1, f->bits_per_field, BKEY_NR_FIELDS);
}

static uint32_t shape_hash(const uint8_t shape[BK_SHAPE_BYTES])
{
	uint32_t h = 2166136261u;
	size_t i;

	for (i = 0; i < BK_SHAPE_BYTES; i++)
		h = (h ^ shape[i]) * 16777619u;
	return h;
}

static void entry_release(struct bk_fmt_entry *e)
{
	bk_prog_unload(&e->lookup);
	bk_prog_unload(&e->scan);
}

static void cache_free(struct bk_fmt_cache *c)
{
	uint32_t i;

	for (i = 0; i < c->nr; i++)
		entry_release(&c->e[i]);
	free(c->e);
	free(c->slot);
	memset(c, 0, sizeof(*c));
}

/* The entry of @f's shape, or a new one; its refcount goes up by one. */
static struct bk_fmt_entry *cache_get(struct bk_fmt_cache *c, const struct bkey_format *f,
				      bool *created)
{
	uint8_t shape[BK_SHAPE_BYTES];
	uint32_t h;

	shape_of(f, shape);
	h = shape_hash(shape) & (c->nr_slots - 1);
	*created = false;
	for (;; h = (h + 1) & (c->nr_slots - 1)) {
		struct bk_fmt_entry *e;

		if (!c->slot[h])
			break;
		e = &c->e[c->slot[h] - 1];
		if (!memcmp(e->shape, shape, sizeof(shape))) {
			e->refs++;
			return e;
		}
	}
	if (c->nr == c->cap)
		return NULL;		/* sized for one entry per node */
	c->slot[h] = c->nr + 1;
	c->e[c->nr] = (struct bk_fmt_entry){ .f = *f, .fid = c->nr, .refs = 1,
					      .lookup = { .fd = -1 }, .scan = { .fd = -1 } };
	memcpy(c->e[c->nr].shape, shape, sizeof(shape));
	*created = true;
	return &c->e[c->nr++];
}

/*
 * A node of shape entry @e goes: the last one releases the shape's
 * programs (its prog array slot is emptied first, so no lookup can tail
 * call into a program that is gone).
 */
static void cache_put(struct bk_node_cache *nc, struct bk_fmt_entry *e)
{
	if (!e->refs || --e->refs)
		return;
	if (nc->lr.progs_fd >= 0 && !nc->pinned && bpf_map_delete_elem(nc->lr.progs_fd, &e->fid) &&
	    !nc->release_err)
		nc->release_err = -errno;	/* the slot still holds the program */
	entry_release(e);
	if (nc->prog_fd_by_fid)
		nc->prog_fd_by_fid[e->fid] = -1;
}

static int load_programs(struct bk_node_cache *nc, struct bk_fmt_entry *e, FILE *log_out)
{
	struct bk_prog p = {};
	struct bk_gen_opts so = {
		.shape = nc->ft.may_goto ? BK_SHAPE_MAY_GOTO : BK_SHAPE_BPF_LOOP,
		.walk = BK_WALK_TABLE, .chunk = 1, .by_shape = true,
		.ctl_fd = nc->srt.ctl_fd, .in_fd = nc->srt.in_fd, .out_fd = nc->srt.out_fd,
		.nodes_fd = nc->lr.nodes_fd,
		.node_size = nc->node_size,
		.strict_align = bk_strict_align_default(),
	};
	struct bk_search_opts o = {
		.node_size = nc->node_size, .lookup = true, .by_shape = true,
		.loop = nc->search_loop,
		.ctl_fd = nc->lr.ctl_fd, .nodes_fd = nc->lr.nodes_fd, .progs_fd = nc->lr.progs_fd,
		.strict_align = bk_strict_align_default(),
	};
	double t0 = bk_now_ns();
	long long mem0 = bk_kernel_mem_bytes(&nc->mem_method);
	int ret = bk_gen_search(&e->f, &o, &p, NULL);

	if (!ret)
		ret = bk_prog_load_report(&p, &e->lookup, log_out, "loader", NULL, 0);
	if (!ret)
		ret = bk_gen_unpack(&e->f, &so, &p, NULL);
	if (!ret)
		ret = bk_prog_load_report(&p, &e->scan, log_out, "loader", NULL, 0);
	bk_prog_release(&p);
	e->prepare_us = (bk_now_ns() - t0) / 1e3;
	e->kernel_bytes = bk_kernel_mem_bytes(&nc->mem_method) - mem0;
	nc->prog_kernel_bytes += e->kernel_bytes;
	if (!ret) {
		nc->programs_loaded += 2;
		ret = bk_lookup_set_prog(&nc->lr, e->fid, e->lookup.fd);
	}
	if (!ret)
		nc->prog_fd_by_fid[e->fid] = e->lookup.fd;
	return ret;
}

int bk_node_cache_open(struct bk_node_cache *nc, unsigned node_size, uint32_t nr_slots)
{
	return bk_node_cache_open_runs(nc, node_size, nr_slots, 1);
}

/*
 * may_goto's loop where the scans have it, else unrolled; or what
 * BKEY_SEARCH names, if this kernel can load it.
 */
static int pick_search_loop(struct bk_node_cache *nc)
{
	const char *want = getenv("BKEY_SEARCH");
	const char *why = NULL;

	nc->search_loop = nc->ft.may_goto ? BK_SEARCH_MAY_GOTO : BK_SEARCH_UNROLLED;
	if (!want || !*want)
		return 0;
	if (!strcmp(want, "unrolled")) {
		nc->search_loop = BK_SEARCH_UNROLLED;
	} else if (!strcmp(want, "may_goto")) {
		nc->search_loop = BK_SEARCH_MAY_GOTO;
		if (!nc->ft.may_goto)
			why = "no may_goto (6.9+), or BKEY_LOOPS=bpf_loop";
	} else if (!strcmp(want, "bpf_loop")) {
		nc->search_loop = BK_SEARCH_BPF_LOOP;
		if (!nc->ft.bpf_loop)
			why = "no bpf_loop with the JIT";
		else if (!nc->ft.tail_call_subprog)
			why = "the JIT does not mix tail calls with bpf-to-bpf calls";
	} else {
		why = "not one of may_goto, unrolled, bpf_loop";
	}
	if (why) {
		fprintf(stderr, "BKEY_SEARCH=%s: %s\n", want, why);
		return -EINVAL;
	}
	return 0;
}

int bk_node_cache_open_runs(struct bk_node_cache *nc, unsigned node_size, uint32_t nr_slots,
			    uint32_t nr_run_slots)
{
	uint32_t slots = 16, i;
	int ret;

	memset(nc, 0, sizeof(*nc));
	nc->lr.ctl_fd = nc->lr.nodes_fd = nc->lr.progs_fd = -1;
	nc->srt.ctl_fd = nc->srt.in_fd = nc->srt.out_fd = -1;
	nc->node_size = node_size;
	nc->nr_slots = nr_slots;
	while (slots < 2 * nr_slots)
		slots *= 2;
	/* a shape per node at most */
	nc->cache.e = calloc(nr_slots, sizeof(*nc->cache.e));
	nc->cache.cap = nr_slots;
	nc->cache.slot = calloc(slots, sizeof(*nc->cache.slot));
	nc->cache.nr_slots = slots;
	nc->prog_fd_by_fid = calloc(nr_slots, sizeof(*nc->prog_fd_by_fid));
	if (!nr_slots || !nc->cache.e || !nc->cache.slot || !nc->prog_fd_by_fid) {
		ret = nr_slots ? -ENOMEM : -EINVAL;
		goto fail;
	}
	for (i = 0; i < nr_slots; i++)
		nc->prog_fd_by_fid[i] = -1;	/* no program yet */
	nc->nr_run_slots = nr_run_slots;
	ret = bk_probe_features(&nc->ft);
	/* BKEY_LOOPS=bpf_loop: the shapes of kernels without may_goto, here
	 * too (the tests run both where the kernel has both) */
	if (!ret && getenv("BKEY_LOOPS") && !strcmp(getenv("BKEY_LOOPS"), "bpf_loop"))
		nc->ft.may_goto = false;
	if (!ret && !nc->ft.may_goto && !nc->ft.bpf_loop)
		ret = -EOPNOTSUPP;
	if (!ret)
		ret = pick_search_loop(nc);
	if (ret)
		goto fail;
	ret = bk_lookup_rt_open_slots(&nc->lr, node_size, nr_slots, nr_slots, nr_run_slots);
	if (!ret)
		ret = bk_runtime_open_slots(&nc->srt, nr_run_slots);
	if (!ret)
		return 0;
fail:
	bk_node_cache_close(nc);
	return ret;
}

const char *bk_node_cache_shapes(const struct bk_node_cache *nc)
{
	if (nc->ft.may_goto)
		return nc->search_loop == BK_SEARCH_MAY_GOTO ?
		       "may_goto: the node search and the scans loop with may_goto" :
		       nc->search_loop == BK_SEARCH_UNROLLED ?
		       "the node search unrolled (BKEY_SEARCH), the scans loop with may_goto" :
		       "the node search in bpf_loop callbacks (BKEY_SEARCH), the scans loop with may_goto";
	return nc->search_loop == BK_SEARCH_UNROLLED ?
	       "no may_goto (kernel < 6.9): the node search unrolled, scans in bpf_loop callbacks" :
	       "no may_goto (kernel < 6.9): the node search and the scans in bpf_loop callbacks";
}

const char *bk_node_cache_loops_tag(const struct bk_node_cache *nc)
{
	static const char *const tag[2][3] = {
		[0][BK_SEARCH_UNROLLED] = "unrolled+bpf_loop",
		[0][BK_SEARCH_BPF_LOOP] = "bpf_loop+bpf_loop",
		[1][BK_SEARCH_MAY_GOTO] = "may_goto",
		[1][BK_SEARCH_UNROLLED] = "unrolled+may_goto",
		[1][BK_SEARCH_BPF_LOOP] = "bpf_loop+may_goto",
	};
	const char *t = tag[nc->ft.may_goto][nc->search_loop];

	return t ? t : "?";
}

void bk_node_cache_close(struct bk_node_cache *nc)
{
	cache_free(&nc->cache);
	bk_lookup_rt_close(&nc->lr);
	bk_runtime_close(&nc->srt);
	free(nc->prog_fd_by_fid);
	nc->prog_fd_by_fid = NULL;
}

static int cmp_format(const void *a, const void *b)
{
	return memcmp(a, b, sizeof(struct bkey_format));
}

/* Distinct formats among @bt's nodes (for reports: shapes are what load); -ENOMEM. */
static int count_formats(const struct bk_btree *bt)
{
	struct bkey_format *f = malloc((bt->nr_nodes + 1) * sizeof(*f));
	uint32_t i, n = 0;

	if (!f)
		return -ENOMEM;
	for (i = 0; i < bt->nr_nodes; i++)
		f[i] = bt->nodes[i].f;
	qsort(f, bt->nr_nodes, sizeof(*f), cmp_format);
	for (i = 0; i < bt->nr_nodes; i++)
		n += !i || cmp_format(&f[i], &f[i - 1]);
	free(f);
	return n;
}

static int tree_load(struct bk_tree_rt *t, const struct bk_btree *bt, struct bk_node_cache *nc,
		     uint32_t own_runs, FILE *log_out);

int bk_tree_load(struct bk_tree_rt *t, const struct bk_btree *bt, struct bk_node_cache *nc,
		 FILE *log_out)
{
	return tree_load(t, bt, nc, 1, log_out);
}

int bk_tree_load_runs(struct bk_tree_rt *t, const struct bk_btree *bt, uint32_t nr_run_slots,
		      FILE *log_out)
{
	return tree_load(t, bt, NULL, nr_run_slots, log_out);
}

static int tree_load(struct bk_tree_rt *t, const struct bk_btree *bt, struct bk_node_cache *nc,
		     uint32_t own_runs, FILE *log_out)
{
	double *cached_ns = NULL, *prep = NULL;
	uint8_t *uses = NULL;		/* by shape id: this tree has such a node */
	uint32_t i, nr_cached = 0;
	int ret;

	memset(t, 0, sizeof(*t));
	t->bt = bt;
	ret = count_formats(bt);
	if (ret < 0)
		return ret;
	t->nr_formats = ret;
	if (!nc) {
		ret = bk_node_cache_open_runs(&t->own, bt->o.node_size, bt->nr_nodes, own_runs);
		if (ret)
			return ret;
		nc = &t->own;
	}
	t->nc = nc;
	if (nc->node_size != bt->o.node_size || bt->nr_nodes > nc->nr_slots - nc->nr_used) {
		ret = nc->node_size != bt->o.node_size ? -EINVAL : -ENOSPC;
		goto fail;
	}
	t->base = nc->nr_used;
	nc->nr_used += bt->nr_nodes;
	t->fid_of_node = calloc(bt->nr_nodes, sizeof(*t->fid_of_node));
	cached_ns = calloc(bt->nr_nodes + 1, sizeof(*cached_ns));
	prep = calloc(bt->nr_nodes + 1, sizeof(*prep));
	uses = calloc(nc->cache.cap, 1);
	if (!t->fid_of_node || !cached_ns || !prep || !uses) {
		ret = -ENOMEM;
		goto fail;
	}
	for (i = 0; i < bt->nr_nodes; i++) {
		double t0 = bk_now_ns();
		bool created;
		struct bk_fmt_entry *e = cache_get(&nc->cache, &bt->nodes[i].f, &created);

		if (!e) {
			ret = -ENOMEM;
			goto fail;
		}
		t->fid_of_node[i] = e->fid;
		t->nr_loaded = i + 1;
		if (created) {
			ret = load_programs(nc, e, log_out);
			if (ret)
				goto fail;
			prep[t->new_shapes++] = e->prepare_us;
			t->prepare_us_sum += e->prepare_us;
			t->prog_kernel_bytes += e->kernel_bytes;
		}
		t->nr_shapes += !uses[e->fid];
		uses[e->fid] = 1;
		bk_node_image(&bt->nodes[i], bt->o.node_size, e->fid, t->base,
			      (uint8_t *)nc->lr.nodes + (size_t)(t->base + i) * nc->lr.node_value_size);
		if (!created)
			cached_ns[nr_cached++] = bk_now_ns() - t0;
	}
	/* a node whose shape is cached: find its shape, copy its image (keys,
	 * table, format, template) into its slot */
	t->cached_node_load_ns = nr_cached ? bk_median(cached_ns, nr_cached) : 0;
	if (t->new_shapes) {
		qsort(prep, t->new_shapes, sizeof(*prep), bk_cmp_double);
		t->prepare_us_p50 = prep[t->new_shapes / 2];
		t->prepare_us_p99 = prep[t->new_shapes * 99 / 100];
	}
	free(cached_ns);
	free(prep);
	free(uses);
	return 0;
fail:
	free(cached_ns);
	free(prep);
	free(uses);
	bk_tree_unload(t);
	return ret;
}

int bk_tree_unload(struct bk_tree_rt *t)
{
	int ret = 0;
	uint32_t i;

	/* node by node, as nodes leave a cache: each shape's last releases it */
	for (i = 0; t->fid_of_node && i < t->nr_loaded; i++)
		bk_tree_drop_node(t, i);
	free(t->fid_of_node);
	t->fid_of_node = NULL;
	t->nr_loaded = 0;
	if (t->nc)
		ret = t->nc->release_err;
	if (t->nc == &t->own)
		bk_node_cache_close(&t->own);
	t->nc = NULL;
	return ret;
}

void bk_tree_drop_node(struct bk_tree_rt *t, uint32_t node)
{
	if (node >= t->nr_loaded || t->fid_of_node[node] == BK_NODE_DROPPED)
		return;
	cache_put(t->nc, &t->nc->cache.e[t->fid_of_node[node]]);
	t->fid_of_node[node] = BK_NODE_DROPPED;
}

int bk_worker_init(struct bk_worker *w, const struct bk_node_cache *nc, uint32_t run_slot)
{
	memset(w, 0, sizeof(*w));
	if (run_slot >= nc->nr_run_slots)
		return -EINVAL;
	w->run_slot = run_slot;
	bk_lookup_rt_slot(&nc->lr, run_slot, &w->lr);
	bk_runtime_slot(&nc->srt, run_slot, &w->srt);
	return 0;
}

int bk_tree_lookup_on(struct bk_tree_rt *t, struct bk_worker *w, const struct bpos *pos,
		      size_t n, struct bk_result *out)
{
	struct bk_lookup_rt *lr = &w->lr;
	const struct bk_lookup_tree tree = {
		.prog_fd_by_fid = t->nc->prog_fd_by_fid, .nr_fids = t->nc->nr_slots,
		.slot_first = t->base, .slot_end = t->base + t->bt->nr_nodes,
		.root = t->base + t->bt->root, .root_level = t->bt->depth - 1,
		.depth = t->bt->depth + t->bt->leaf_gaps,
	};
	size_t done = 0;

	while (done < n) {
		uint32_t nq = n - done > BK_BATCH ? BK_BATCH : n - done, i, status;
		int ret;

		for (i = 0; i < nq; i++)
			lr->queries[i] = (struct bk_query){ pos[done + i].inode, pos[done + i].offset,
							    pos[done + i].snapshot };
		ret = bk_lookup_batch(lr, &tree, nq, &status, &w->st);
		if (ret || status != BK_OK) {
			w->last_status = ret ? ret : (int)status;
			w->last_slot = lr->ctl->node;
			w->last_node = w->last_slot - t->base;
			return ret ? ret : -EIO;
		}
		/* the answers' nodes as the tree numbers them */
		for (i = 0; i < nq; i++) {
			out[done + i] = lr->results[i];
			out[done + i].node -= t->base;
		}
		done += nq;
	}
	return 0;
}

int bk_tree_scan_on(struct bk_tree_rt *t, struct bk_worker *w, struct bpos from, size_t count,
		    struct bk_result *out, size_t *got)
{
	struct bk_node_cache *nc = t->nc;
	struct bk_result first;
	uint32_t node, idx, hops;
	int ret;

	*got = 0;
	if (!count)
		return 0;
	ret = bk_tree_lookup_on(t, w, &from, 1, &first);
	if (ret || !first.found)
		return ret;
	/* leaf after leaf by their next-leaf links, as the programs go */
	for (node = first.node, idx = first.idx, hops = 0; *got < count;
	     node = t->bt->nodes[node].next_leaf - 1, idx = 0, hops++) {
		const struct bk_fmt_entry *e;
		uint32_t nr, take, n = 0, i, status;

		if (node >= t->bt->nr_nodes || hops > t->bt->nr_nodes ||
		    t->bt->nodes[node].level || idx > t->bt->nodes[node].nr_keys) {
			w->last_status = BK_ERR_NODE_PTR;
			w->last_node = node;
			w->last_slot = t->base + node;
			return -EIO;
		}
		e = &nc->cache.e[t->fid_of_node[node]];
		nr = t->bt->nodes[node].nr_keys;
		take = nr - idx;

		if (take > count - *got)
			take = count - *got;
		ret = bk_run_node(&e->scan, &w->srt, t->base + node, idx, idx + take, &status, &n, 1,
				  NULL);
		if (ret || status != BK_OK || n != take) {
			w->last_status = ret ? ret : status != BK_OK ? (int)status : -EIO;
			w->last_node = node;
			w->last_slot = t->base + node;
			return ret ? ret : -EIO;
		}
		for (i = 0; i < take; i++) {
			struct bk_result *r = &out[*got + i];

			memcpy(r->key, &w->srt.out[idx + i], sizeof(r->key));
			r->node = node;
			r->idx = idx + i;
			r->found = 1;
		}
		*got += take;
		if (!t->bt->nodes[node].next_leaf)
			break;		/* the last leaf */
	}
	return 0;
}

/* The tree's own runs: run slot 0, its counts and failures kept in @t. */
static void worker_of_tree(struct bk_tree_rt *t, struct bk_worker *w)
{
	bk_worker_init(w, t->nc, t->run_slot);
	w->st = t->st;
}

static void worker_done(struct bk_tree_rt *t, const struct bk_worker *w)
{
	t->st = w->st;
	if (w->last_status) {
		t->last_status = w->last_status;
		t->last_node = w->last_node;
		t->last_slot = w->last_slot;
	}
}

int bk_tree_lookup(struct bk_tree_rt *t, const struct bpos *pos, size_t n,
		   struct bk_result *out)
{
	struct bk_worker w;
	int ret;

	worker_of_tree(t, &w);
	ret = bk_tree_lookup_on(t, &w, pos, n, out);
	worker_done(t, &w);
	return ret;
}

int bk_tree_scan(struct bk_tree_rt *t, struct bpos from, size_t count,
		 struct bk_result *out, size_t *got)
{
	struct bk_worker w;
	int ret;

	worker_of_tree(t, &w);
	ret = bk_tree_scan_on(t, &w, from, count, out, got);
	worker_done(t, &w);
	return ret;
}

void bk_worker_bad_reason(const struct bk_tree_rt *t, const struct bk_worker *w, char *buf,
			  size_t len)
{
	struct bk_tree_rt copy = *t;

	copy.last_status = w->last_status;
	copy.last_node = w->last_node;
	copy.last_slot = w->last_slot;
	bk_tree_bad_reason(&copy, buf, len);
}

void bk_tree_bad_reason(const struct bk_tree_rt *t, char *buf, size_t len)
{
	const struct bk_node_hdr *h;
	const struct bkey_format *f;
	const uint64_t *words;
	const uint16_t *tab;
	uint32_t nwords = t->bt->o.node_size / 8, nr_keys, i;

	if (t->last_status == -ELOOP) {
		snprintf(buf, len, "a lookup did not finish within a run's tail calls: the "
			 "pointers from node %u on loop", t->last_node);
		return;
	}
	if (t->last_status < 0) {
		snprintf(buf, len, "%s", strerror(-t->last_status));
		return;
	}
	if (t->last_slot < t->base || t->last_slot - t->base >= t->bt->nr_nodes) {
		snprintf(buf, len, "a pointer left the tree: slot %u, the tree's are %u..%u",
			 t->last_slot, t->base, t->base + t->bt->nr_nodes - 1);
		return;
	}
	h = bk_lookup_node(&t->nc->lr, t->last_slot);
	switch (t->last_status) {
	case BK_ERR_NODE_SHAPE:
		snprintf(buf, len, "node %u: its format id %u names a program of another format "
			 "(key_u64s %u, widths %u,%u,%u,%u,%u,%u in the node)", t->last_node,
			 h->format_id, h->format[0], h->format[2], h->format[3], h->format[4],
			 h->format[5], h->format[6], h->format[7]);
		return;
	case BK_ERR_NODE_LEVEL:
		snprintf(buf, len, "node %u: level %u is not one below its parent's (or a next leaf "
			 "that is no leaf, or an interior node with a key that is no btree_ptr_v2)",
			 t->last_node, h->level);
		return;
	case BK_ERR_LEAF_HOPS:
		snprintf(buf, len, "node %u: more next-leaf hops than the tree has nodes: the "
			 "next-leaf links loop", t->last_node);
		return;
	case BK_ERR_NODE_TMPL:
		snprintf(buf, len, "node %u: its unpack template is not its format's (the search "
			 "would pack with one and the answer unpack with the other), or a field "
			 "offset breaks spec 9.1", t->last_node);
		return;
	case BK_ERR_NODE_FID:
		snprintf(buf, len, "node %u: format id %u has no program (the cache has %u)",
			 t->last_node, h->format_id, t->nc->nr_slots);
		return;
	}
	f = (const void *)h->format;
	words = (const uint64_t *)((const uint8_t *)h + BK_NODE_WORDS_OFF);
	tab = (const uint16_t *)((const uint8_t *)h + BK_NODE_WORDS_OFF + t->bt->o.node_size);
	nr_keys = __atomic_load_n(&h->nr_keys, __ATOMIC_RELAXED);	/* once: it may change */
	if (nr_keys > nwords) {
		snprintf(buf, len, "node %u: %u keys, more than it holds", t->last_node, nr_keys);
		return;
	}
	/* a table entry outside the node first: it also ends the key before */
	for (i = 0; i < nr_keys; i++)
		if (tab[i] >= nwords) {
			snprintf(buf, len, "node %u key %u: the key table points outside the node "
				 "(word %u of %u)", t->last_node, i, tab[i], nwords);
			return;
		}
	for (i = 0; i < nr_keys; i++) {
		unsigned kw, u64s;
		enum bkey_stream_err err;

		if (tab[i + 1] > nwords) {
			snprintf(buf, len, "node %u key %u: key runs past the end of the node",
				 t->last_node, i);
			return;
		}
		err = bkey_stream_check(f, words, nwords, tab[i], &kw);
		if (err) {
			snprintf(buf, len, "node %u key %u: %s", t->last_node, i,
				 bkey_stream_err_str(err));
			return;
		}
		u64s = ((const uint8_t *)&words[tab[i]])[0];
		if (tab[i + 1] != tab[i] + u64s) {
			snprintf(buf, len, "node %u key %u: the key table says %d words, u64s says %u",
				 t->last_node, i, (int)tab[i + 1] - (int)tab[i], u64s);
			return;
		}
	}
	snprintf(buf, len, "node %u: status %d", t->last_node, t->last_status);
}

const uint64_t *bk_tree_result_val(const struct bk_tree_rt *t, const struct bk_result *r)
{
	unsigned nw = t->bt->o.node_size / 8, u64s = ((const uint8_t *)r->key)[0];
	unsigned words = u64s - BKEY_U64s;
	const struct bk_node_hdr *h;
	const uint8_t *k;
	uint16_t at;

	/* the map is anyone's to write: the value must lie inside the node */
	if (!r->found || u64s < BKEY_U64s || r->node >= t->bt->nr_nodes || r->idx >= nw)
		return NULL;
	h = bk_lookup_node(&t->nc->lr, t->base + r->node);
	memcpy(&at, (const uint8_t *)h + BK_NODE_WORDS_OFF + t->bt->o.node_size + 2 * r->idx, 2);
	k = (const uint8_t *)h + BK_NODE_WORDS_OFF + 8 * (size_t)at;
	if (at >= nw || at + bkey_key_words((const void *)h->format, k) + words > nw)
		return NULL;
	return (const uint64_t *)k + bkey_key_words((const void *)h->format, k);
}
