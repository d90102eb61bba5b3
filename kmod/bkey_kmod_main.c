// SPDX-License-Identifier: GPL-2.0
/*
 * bkey_kmod: kernel C calls the generated unpack programs the way bcachefs
 * called its compiled unpack: a direct call of the JIT'd image on node
 * memory, no syscall, from several CPUs at once, each call checked bit for
 * bit against the model's C unpack built into this module.
 *
 * The loader (`loader kmod`) loads the programs, writes each node into the
 * runtime maps' slots and loads this module with the programs' fds or
 * bpffs paths.  Everything runs in module init, in the loader's process
 * (whose fds are valid there), and the result is left in the read-only
 * parameter "result"; the loader reads it and removes the module.
 *
 * Program i's thread t uses run slot i * threads + t (gen/abi.h): the
 * slot's ctl, in and out map values are looked up once and reached in
 * place.  A socket filter's context is an sk_buff; the only field the
 * programs read is cb[0], the slot, which the verifier rewrote into the
 * qdisc_skb_cb's data: the module gives each thread an skb of its own.
 */
#include <linux/bpf.h>
#include <linux/completion.h>
#include <linux/cpumask.h>
#include <linux/filter.h>
#include <linux/kthread.h>
#include <linux/module.h>
#include <linux/sched.h>
#include <linux/skbuff.h>
#include <linux/slab.h>
#include <linux/timekeeping.h>
#include <linux/vmalloc.h>
#include <net/sch_generic.h>

#include "bkey.h"
#include "abi.h"

#define BK_KMOD_MAX_PROGS	16
#define BK_KMOD_MAX_THREADS	8

static int progs[BK_KMOD_MAX_PROGS];
static int nr_progs;
module_param_array(progs, int, &nr_progs, 0);
MODULE_PARM_DESC(progs, "unpack programs by fd (of the process loading the module)");

static char *paths[BK_KMOD_MAX_PROGS];
static int nr_paths;
module_param_array(paths, charp, &nr_paths, 0);
MODULE_PARM_DESC(paths, "unpack programs by bpffs path, instead of progs");

static char *formats[BK_KMOD_MAX_PROGS];
static int nr_formats;
module_param_array(formats, charp, &nr_formats, 0);
MODULE_PARM_DESC(formats, "each program's node format: struct bkey_format, 56 bytes in hex");

static unsigned int words[BK_KMOD_MAX_PROGS];
static int nr_words;
module_param_array(words, uint, &nr_words, 0);
MODULE_PARM_DESC(words, "words of keys in each program's node (its in map slots)");

static unsigned int threads = 2;
module_param(threads, uint, 0);
MODULE_PARM_DESC(threads, "kthreads calling at once, one run slot each per program");

static unsigned int stress_ms = 2000;
module_param(stress_ms, uint, 0);
MODULE_PARM_DESC(stress_ms, "how long the threads call and check");

static unsigned int rounds = 15;
module_param(rounds, uint, 0);
MODULE_PARM_DESC(rounds, "timing rounds, BPF and C in turns; the fastest of each counts");

/*
 * Lookups through whole trees (optional): any one lookup program names
 * the lookup maps (search slots, nodes, prog array), and each tree its
 * root, the root's level, its node slots and its depth in tail calls.
 * Tree r's thread t uses search slot r * threads + t, which holds the
 * tree's lookup_nq queries.
 */
static int lookup_prog = -1;
module_param(lookup_prog, int, 0);
MODULE_PARM_DESC(lookup_prog, "a lookup program by fd (-1: no lookups)");

#define BK_KMOD_MAX_TREES	4
static unsigned int tree_root[BK_KMOD_MAX_TREES], tree_level[BK_KMOD_MAX_TREES],
		    tree_first[BK_KMOD_MAX_TREES], tree_end[BK_KMOD_MAX_TREES],
		    tree_depth[BK_KMOD_MAX_TREES];
static int nr_tree_root, nr_tree_level, nr_tree_first, nr_tree_end, nr_tree_depth;
module_param_array(tree_root, uint, &nr_tree_root, 0);
module_param_array(tree_level, uint, &nr_tree_level, 0);
module_param_array(tree_first, uint, &nr_tree_first, 0);
module_param_array(tree_end, uint, &nr_tree_end, 0);
module_param_array(tree_depth, uint, &nr_tree_depth, 0);
MODULE_PARM_DESC(tree_root, "each tree's root node slot");
MODULE_PARM_DESC(tree_level, "each tree's root level");
MODULE_PARM_DESC(tree_first, "each tree's first node slot");
MODULE_PARM_DESC(tree_end, "each tree's node slots end");
MODULE_PARM_DESC(tree_depth, "each tree's tail calls per lookup (depth, + 1 with leaf gaps)");

static unsigned int node_size;
module_param(node_size, uint, 0);
MODULE_PARM_DESC(node_size, "the nodes map's node size: bytes of keys a node holds (gen/abi.h)");

static unsigned int lookup_nq;
module_param(lookup_nq, uint, 0);
MODULE_PARM_DESC(lookup_nq, "queries in each tree's search slots (<= BK_BATCH)");

static int flip_key = -1;
module_param(flip_key, int, 0);
MODULE_PARM_DESC(flip_key, "a self-test of the check: flip a bit of this key of program 0's output in thread 0");

static char result[640];
module_param_string(result, result, sizeof(result), 0444);
MODULE_PARM_DESC(result, "what init found (read-only)");

/* A program and the node it unpacks. */
struct kprog {
	struct bpf_prog		*prog;
	struct bkey_format	f;
	u32			nr_words, nr_keys;
	/*
	 * What C reads: a private copy of the node and its key table, checked
	 * once.  The map can change under the module (root can write it); the
	 * programs check every key they read, C must not have to.
	 */
	u64			*words;
	u16			*tab;
	struct bkey		*want;		/* the C unpack of the node */
};

/* One run slot's map values, in place. */
struct slot {
	u32			key;		/* its index in each map */
	struct bk_ctl		*ctl;
	u16			*tab;
	u64			*in;
	struct bkey		*out;
};

struct worker {
	unsigned int		id;
	struct sk_buff		*skb;		/* its context: cb[0] = its slot */
	struct completion	done;		/* its calls are over */
	u64			keys, calls, mismatches;
	u64			lookups, lookup_batches;
	unsigned long		cpus;		/* CPUs it ran on, a bit each */
	char			first[96];	/* the first mismatch */
};

/* The fastest rounds' ns, summed over programs (and trees). */
struct timing {
	u64	node_bpf, node_c, key_bpf, key_c;
	u64	lookup_bpf, lookup_c;
};

static struct kprog kp[BK_KMOD_MAX_PROGS];
static struct bpf_map *ctl_map, *in_map, *out_map;
static u64 stress_end_ns;

/* The C the programs are timed against: called through a pointer, as
 * bcachefs called its unpack. */
static void (*c_unpack)(const struct bkey_format *f, const void *in, struct bkey *out) =
	bkey_unpack_key;

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

static int parse_format(const char *s, struct bkey_format *f)
{
	u8 *b = (u8 *)f;
	size_t i;

	if (strlen(s) != 2 * sizeof(*f))
		return -EINVAL;
	for (i = 0; i < sizeof(*f); i++) {
		int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -EINVAL;
		b[i] = hi << 4 | lo;
	}
	return 0;
}

static struct bpf_prog *get_prog(int i)
{
	if (nr_paths)
		return bpf_prog_get_type_path(paths[i], BPF_PROG_TYPE_SOCKET_FILTER);
	return bpf_prog_get_type_dev(progs[i], BPF_PROG_TYPE_SOCKET_FILTER, false);
}

/* The runtime's maps (gen/abi.h), by name from the program's used maps;
 * every program must use the same three. */
static int find_maps(const struct bpf_prog *prog, int i)
{
	struct bpf_map *m[3] = {};
	static const char *const names[3] = { "bk_ctl", "bk_in", "bk_out" };
	static const u32 sizes[3] = { BK_CTL_VALUE_SIZE, BK_IN_VALUE_SIZE, BK_OUT_VALUE_SIZE };
	u32 j, n;

	/* BPF_PROG_BIND_MAP may replace the array: under its mutex */
	mutex_lock(&prog->aux->used_maps_mutex);
	for (j = 0; j < prog->aux->used_map_cnt; j++) {
		struct bpf_map *map = prog->aux->used_maps[j];

		for (n = 0; n < 3; n++)
			if (!strcmp(map->name, names[n]))
				m[n] = map;
	}
	mutex_unlock(&prog->aux->used_maps_mutex);
	for (n = 0; n < 3; n++) {
		if (!m[n]) {
			pr_err("bkey_kmod: program %d uses no map %s\n", i, names[n]);
			return -EINVAL;
		}
		if (m[n]->map_type != BPF_MAP_TYPE_ARRAY || m[n]->value_size != sizes[n] ||
		    m[n]->max_entries < nr_progs * threads) {
			pr_err("bkey_kmod: map %s: type %u, value size %u, %u slots; want an array of %u-byte values, %u slots\n",
			       names[n], m[n]->map_type, m[n]->value_size, m[n]->max_entries,
			       sizes[n], nr_progs * threads);
			return -EINVAL;
		}
	}
	if (!i) {
		ctl_map = m[0];
		in_map = m[1];
		out_map = m[2];
	} else if (m[0] != ctl_map || m[1] != in_map || m[2] != out_map) {
		pr_err("bkey_kmod: program %d uses other maps than program 0\n", i);
		return -EINVAL;
	}
	return 0;
}

static void *map_value(struct bpf_map *map, u32 key)
{
	return map->ops->map_lookup_elem(map, &key);
}

static void slot_of(u32 prog, u32 thread, struct slot *s)
{
	u32 key = prog * threads + thread;

	s->key = key;
	s->ctl = map_value(ctl_map, key);
	s->tab = (u16 *)((u8 *)s->ctl + BK_TAB_OFF);
	s->in = map_value(in_map, key);
	s->out = map_value(out_map, key);
}

/*
 * One call of a shape program (the table walk): keys [first, end) of the
 * node (indices into its key table) to out[first...], the contract
 * bk_run_keys() keeps in userspace.  Returns the
 * program's status; *nr_out gets the keys it wrote.  The caller holds
 * off preemption (and is in an RCU read section).
 */
static u32 call_bpf(const struct kprog *p, struct sk_buff *skb, const struct slot *s,
		    u32 first, u32 end, u32 *nr_out)
{
	struct bk_ctl *ctl = s->ctl;

	/* the table walk: keys [first, end) of the key table, key i to
	 * out[i]; the program reads them in bytes (gen/abi.h) */
	ctl->status = ~0u;
	ctl->arg_in = ctl->cur_in = 2 * first;
	ctl->arg_end = 2 * end;
	ctl->arg_out = ctl->cur_out = 40 * first;
	/* __sk_buff cb[0], as the verifier rewrote the program's read */
	*(u32 *)qdisc_skb_cb(skb)->data = s->key;
	bpf_prog_run(p->prog, skb);
	*nr_out = ctl->cur_in / 2 - first;
	return ctl->status;
}

static void check_keys(struct worker *w, u32 prog, const struct bkey *got, u32 first, u32 end)
{
	const struct kprog *p = &kp[prog];
	u32 i;

	for (i = first; i < end; i++) {
		if (!memcmp(&got[i], &p->want[i], sizeof(struct bkey)))
			continue;
		if (!w->mismatches++)
			snprintf(w->first, sizeof(w->first), "prog %u key %u thread %u", prog, i, w->id);
	}
	w->keys += end - first;
}

/* A call that failed: @status is the program's (BK_*) or, for lookups, -errno. */
static void note_failure(struct worker *w, u32 which, const char *what, int status, u32 got,
			 u32 want)
{
	if (!w->mismatches++)
		snprintf(w->first, sizeof(w->first), "%s %u thread %u: status %d, %u of %u",
			 what, which, w->id, status, got, want);
}

/* A whole node in one call, then every 7th key alone, each checked. */
static void stress_one(struct worker *w, u32 prog)
{
	const struct kprog *p = &kp[prog];
	struct slot s;
	u32 st, n, i;

	slot_of(prog, w->id, &s);
	memset(s.out, 0x5a, p->nr_keys * sizeof(struct bkey));
	preempt_disable();
	rcu_read_lock();
	if (smp_processor_id() < BITS_PER_LONG)
		__set_bit(smp_processor_id(), &w->cpus);
	st = call_bpf(p, w->skb, &s, 0, p->nr_keys, &n);
	rcu_read_unlock();
	preempt_enable();
	w->calls++;
	if (flip_key >= 0 && flip_key < n && !prog && !w->id)
		s.out[flip_key].size ^= 1;
	if (st != BK_OK || n != p->nr_keys)
		note_failure(w, prog, "node of prog", st, n, p->nr_keys);
	else
		check_keys(w, prog, s.out, 0, n);

	for (i = w->calls % 7; i < p->nr_keys; i += 7) {
		memset(&s.out[i], 0xa5, sizeof(struct bkey));
		preempt_disable();
		rcu_read_lock();
		st = call_bpf(p, w->skb, &s, i, i + 1, &n);
		rcu_read_unlock();
		preempt_enable();
		w->calls++;
		if (st != BK_OK || n != 1)
			note_failure(w, prog, "one key of prog", st, n, 1);
		else
			check_keys(w, prog, s.out, i, i + 1);
	}
}

static int nr_trees;
static void stress_lookups(struct worker *w, int r);

static int stress_thread(void *arg)
{
	struct worker *w = arg;
	u32 prog = w->id % nr_progs, tree = 0;

	do {
		stress_one(w, prog);
		prog = (prog + 1) % nr_progs;
		if (nr_trees) {
			stress_lookups(w, tree);
			tree = (tree + 1) % nr_trees;
		}
		cond_resched();
	} while (ktime_get_ns() < stress_end_ns && !w->mismatches);
	complete(&w->done);
	/* kthread_stop() reaps it */
	while (!kthread_should_stop()) {
		set_current_state(TASK_INTERRUPTIBLE);
		if (!kthread_should_stop())
			schedule();
		__set_current_state(TASK_RUNNING);
	}
	return 0;
}

/* Fastest of @rounds, BPF and C in turns, over program @i's node (slot
 * i * threads): whole-node unpack, then one key per call. */

static int time_prog(u32 i, struct sk_buff *skb, struct timing *t)
{
	const struct kprog *p = &kp[i];
	u64 best[4] = { U64_MAX, U64_MAX, U64_MAX, U64_MAX };
	struct bkey *c_out;
	struct slot s;
	u32 r, k, n, st = BK_OK;

	c_out = kvmalloc_array(p->nr_keys, sizeof(*c_out), GFP_KERNEL);
	if (!c_out)
		return -ENOMEM;
	slot_of(i, 0, &s);
	for (r = 0; r < rounds; r++) {
		u64 t0, t1, t2, t3, t4;

		preempt_disable();
		rcu_read_lock();
		t0 = ktime_get_ns();
		st |= call_bpf(p, skb, &s, 0, p->nr_keys, &n);
		t1 = ktime_get_ns();
		bkey_unpack_stream(&p->f, p->words, p->nr_words, c_out);
		t2 = ktime_get_ns();
		for (k = 0; k < p->nr_keys; k++)
			st |= call_bpf(p, skb, &s, k, k + 1, &n);
		t3 = ktime_get_ns();
		for (k = 0; k < p->nr_keys; k++)
			READ_ONCE(c_unpack)(&p->f, p->words + p->tab[k], &c_out[k]);
		t4 = ktime_get_ns();
		rcu_read_unlock();
		preempt_enable();
		best[0] = min(best[0], t1 - t0);
		best[1] = min(best[1], t2 - t1);
		best[2] = min(best[2], t3 - t2);
		best[3] = min(best[3], t4 - t3);
		cond_resched();
	}
	/* what was timed was also right */
	if (st != BK_OK || memcmp(s.out, p->want, p->nr_keys * sizeof(*c_out)) ||
	    memcmp(c_out, p->want, p->nr_keys * sizeof(*c_out))) {
		pr_err("bkey_kmod: program %u: the timed runs disagree with the reference (status %u)\n",
		       i, st);
		kvfree(c_out);
		return -EIO;
	}
	t->node_bpf += best[0];
	t->node_c += best[1];
	t->key_bpf += best[2];
	t->key_c += best[3];
	kvfree(c_out);
	return 0;
}

/* The reference for program @i: the model's unpack of slot i * threads's node. */
static int prepare_prog(u32 i)
{
	struct kprog *p = &kp[i];
	struct slot s;
	u32 t, k;
	size_t n, bad;

	slot_of(i, 0, &s);
	p->words = kvmalloc_array(p->nr_words ?: 1, 8, GFP_KERNEL);
	p->tab = kvmalloc_array(BK_TAB_ENTRIES, 2, GFP_KERNEL);
	if (!p->words || !p->tab)
		return -ENOMEM;
	memcpy(p->words, s.in, 8ull * p->nr_words);
	memcpy(p->tab, s.tab, 2ull * BK_TAB_ENTRIES);
	if (bkey_stream_walk(&p->f, p->words, p->nr_words, &n, &bad) != BKEY_STREAM_OK) {
		pr_err("bkey_kmod: program %u: its node's key at word %zu is bad\n", i, bad);
		return -EINVAL;
	}
	/* the key table names each key's word, from word 0 to the end */
	if (p->tab[0] || p->tab[n] != p->nr_words) {
		pr_err("bkey_kmod: program %u: key table [0] = %u, [%zu] = %u: want 0 and %u\n",
		       i, p->tab[0], n, p->tab[n], p->nr_words);
		return -EINVAL;
	}
	for (k = 0; k < n; k++)
		if (p->tab[k + 1] - p->tab[k] != ((u8 *)&p->words[p->tab[k]])[0]) {
			pr_err("bkey_kmod: program %u: key table wrong at key %u\n", i, k);
			return -EINVAL;
		}
	p->want = kvmalloc_array(n ?: 1, sizeof(struct bkey), GFP_KERNEL);
	if (!p->want)
		return -ENOMEM;
	p->nr_keys = bkey_unpack_stream(&p->f, p->words, p->nr_words, p->want);
	/* every slot of the program holds the same node and table */
	for (t = 0; t < threads; t++) {
		struct slot o;

		slot_of(i, t, &o);
		if (memcmp(o.in, p->words, 8ull * p->nr_words) ||
		    memcmp(o.tab, p->tab, 2ull * (n + 1))) {
			pr_err("bkey_kmod: program %u: slot %u's node differs\n", i, t);
			return -EINVAL;
		}
	}
	return 0;
}

/* ---- Lookups through whole trees ---- */

struct lk_tree {
	u32			root, level, first, end, depth;
	/* what C walks: a private copy of the tree's node images, checked
	 * once (the map can change under the module) */
	u8			*nodes;
	struct bk_result	*want;		/* the C lookups' answers */
};

static struct bpf_prog *lk_prog;		/* the one given: names the maps */
static struct bpf_map *lslots_map, *nodes_map, *progs_map;
static struct lk_tree lk[BK_KMOD_MAX_TREES];

static struct bk_search_ctl *lslot(u32 slot)
{
	return map_value(lslots_map, slot);
}

static struct bk_query *lslot_queries(u32 slot)
{
	return (struct bk_query *)((u8 *)lslot(slot) + BK_LSLOT_OFF_QUERIES);
}

static struct bk_result *lslot_results(u32 slot)
{
	return (struct bk_result *)((u8 *)lslot(slot) + BK_LSLOT_OFF_RESULTS);
}

/* Node @slot's image (gen/abi.h), or NULL past the map. */
static const struct bk_node_hdr *node_at(u32 slot)
{
	return map_value(nodes_map, slot);
}

/* The lookup program of node @slot's format, from the prog array (RCU). */
static struct bpf_prog *node_prog(const struct lk_tree *t, u32 slot)
{
	struct bpf_array *array = container_of(progs_map, struct bpf_array, map);
	const struct bk_node_hdr *h;

	if (slot < t->first || slot >= t->end || !(h = node_at(slot)) ||
	    h->format_id >= progs_map->max_entries)
		return NULL;
	return READ_ONCE(array->ptrs[h->format_id]);
}

/*
 * Tree @t's lookups of search slot @slot's queries[0, nq), the contract
 * bk_lookup_batch() keeps: a run ends between lookups once its budget of
 * lookups is spent (the kernel's 33 tail calls), and the next run goes on
 * from the node the walk stopped at.  0, or -errno (-ELOOP if a run
 * finished no lookup).  In an RCU read section, preemption off.
 */
static int bpf_lookups(const struct lk_tree *t, u32 slot, struct sk_buff *skb, u32 nq)
{
	struct bk_search_ctl *c = lslot(slot);
	const struct bk_query *q0 = lslot_queries(slot);
	u32 per_run = bk_lookups_per_run(t->depth), runs;

	bk_lookup_start(c, q0, nq, t->root, t->level, node_at(t->root)->format_id, t->first,
			t->end, per_run);
	*(u32 *)qdisc_skb_cb(skb)->data = slot;
	for (runs = 0; runs <= nq; runs++) {
		u32 q = c->q, node = READ_ONCE(c->node);
		struct bpf_prog *prog = node_prog(t, node);

		if (!prog)
			return -EINVAL;
		c->status = ~0u;
		c->budget = per_run;
		bpf_prog_run(prog, skb);
		if (c->status == BK_OK)
			return 0;
		if (c->status != BK_ERR_TAIL)
			return -EIO;
		if (c->q == q || c->q > nq)
			return -ELOOP;
	}
	return -ELOOP;
}

/* Node @slot of tree @t in C's private copy. */
static const struct bk_node_hdr *node_copy(const struct lk_tree *t, u32 slot)
{
	return (const struct bk_node_hdr *)(t->nodes + (size_t)(slot - t->first) *
					    nodes_map->value_size);
}

/* Is key @i of node @h at or above @pos?  (user/btree.c's, over an image.) */
static bool key_at_or_above(const struct bk_node_hdr *h, const struct bkey_format *f, u32 i,
			    struct bpos pos, enum bkey_pack_pos_ret r, const u64 *packed)
{
	const u16 *tab = (const u16 *)((const u8 *)h + bk_node_tab_off(node_size));
	const u64 *kw = (const u64 *)((const u8 *)h + BK_NODE_WORDS_OFF) + tab[i];
	int c;

	if (bkey_format_byte(kw) != KEY_FORMAT_LOCAL_BTREE)
		return bpos_cmp(bkey_unpack_pos(f, kw), pos) >= 0;
	if (r == BKEY_PACK_POS_FAIL)
		return true;
	c = bkey_cmp_packed(f, kw, packed);
	return r == BKEY_PACK_POS_EXACT ? c >= 0 : c > 0;
}

/*
 * The same lookup in C with the model, bcachefs's algorithm over the same
 * node images: in each node the search position packed lossily, the first
 * key at or above it by packed comparison, down the child pointer; past a
 * leaf's keys, on to the next leaf.
 */
static int c_lookup(const struct lk_tree *t, const struct bk_query *q, struct bk_result *res)
{
	struct bpos pos = { .inode = q->inode, .offset = q->offset, .snapshot = q->snapshot };
	u32 slot = t->root, hops = 0, depth = 0, level = t->level;
	const struct bk_node_hdr *h;
	struct bkey_format f;
	const u64 *kw;
	const u16 *tab;
	u32 lo, hi;

	/* the copy was checked (check_node()): formats, tables, keys; the
	 * walk checks what links nodes: ranges and levels */
	for (;;) {
		u64 packed[BKEY_U64s];
		enum bkey_pack_pos_ret r;
		struct bkey k;

		if (slot < t->first || slot >= t->end || depth++ > t->level)
			return -EINVAL;
		h = node_copy(t, slot);
		if (h->level != level)
			return -EINVAL;
		memcpy(&f, h->format, sizeof(f));
		r = bkey_pack_pos_lossy(&f, pos, packed);
		for (lo = 0, hi = h->nr_keys; lo < hi;) {
			u32 mid = lo + (hi - lo) / 2;

			if (key_at_or_above(h, &f, mid, pos, r, packed))
				hi = mid;
			else
				lo = mid + 1;
		}
		if (!h->level)
			break;
		if (lo == h->nr_keys) {		/* the last child reaches SPOS_MAX */
			memset(res, 0, sizeof(*res));
			return 0;
		}
		tab = (const u16 *)((const u8 *)h + bk_node_tab_off(node_size));
		kw = (const u64 *)((const u8 *)h + BK_NODE_WORDS_OFF) + tab[lo];
		bkey_unpack_key(&f, kw, &k);
		/* a pointer key has its value: the child's slot */
		if (k.type != KEY_TYPE_btree_ptr_v2 ||
		    ((const u8 *)kw)[0] <= bkey_key_words(&f, kw))
			return -EINVAL;
		slot = (u32)kw[bkey_key_words(&f, kw)];
		level--;
	}
	while (lo == h->nr_keys) {		/* the next leaf's first key */
		if (!h->next_leaf) {
			memset(res, 0, sizeof(*res));
			return 0;
		}
		slot = h->next_leaf - 1;
		if (++hops > t->end - t->first || slot < t->first || slot >= t->end)
			return -ELOOP;
		h = node_copy(t, slot);
		if (h->level)
			return -EINVAL;
		memcpy(&f, h->format, sizeof(f));
		lo = 0;
	}
	tab = (const u16 *)((const u8 *)h + bk_node_tab_off(node_size));
	kw = (const u64 *)((const u8 *)h + BK_NODE_WORDS_OFF) + tab[lo];
	memset(res, 0, sizeof(*res));
	bkey_unpack_key(&f, kw, (struct bkey *)res->key);
	res->node = slot;
	res->idx = lo;
	res->found = 1;
	return 0;
}

static bool result_equal(const struct bk_result *a, const struct bk_result *b)
{
	if (a->found != b->found)
		return false;
	return !a->found || (!memcmp(a->key, b->key, sizeof(a->key)) && a->node == b->node &&
			     a->idx == b->idx);
}

static int find_lookup_maps(void)
{
	u32 j;

	mutex_lock(&lk_prog->aux->used_maps_mutex);
	for (j = 0; j < lk_prog->aux->used_map_cnt; j++) {
		struct bpf_map *map = lk_prog->aux->used_maps[j];

		if (!strcmp(map->name, "bk_lslots"))
			lslots_map = map;
		else if (!strcmp(map->name, "bk_nodes"))
			nodes_map = map;
		else if (!strcmp(map->name, "bk_progs"))
			progs_map = map;
	}
	mutex_unlock(&lk_prog->aux->used_maps_mutex);
	if (!lslots_map || lslots_map->map_type != BPF_MAP_TYPE_ARRAY ||
	    lslots_map->value_size != BK_LSLOT_SIZE ||
	    lslots_map->max_entries < nr_trees * threads || !nodes_map ||
	    nodes_map->map_type != BPF_MAP_TYPE_ARRAY ||
	    node_size < 64 || node_size % 8 || node_size > 8 * BK_IDX_MASK ||
	    nodes_map->value_size != bk_node_value_size(node_size) ||
	    !progs_map || progs_map->map_type != BPF_MAP_TYPE_PROG_ARRAY) {
		pr_err("bkey_kmod: lookup_prog: its maps are not bk_lslots (%u slots of %u bytes wanted), bk_nodes (of %u-byte nodes) and bk_progs\n",
		       nr_trees * threads, BK_LSLOT_SIZE, node_size);
		return -EINVAL;
	}
	return 0;
}

/*
 * A node image the C lookup may walk: its table inside its map value, in
 * order, each entry a key of the u64s it says, its keys a valid stream
 * of a valid format.  The loader wrote it; this keeps a wrong one from
 * sending C (or a comparison) astray.
 */
static int check_node(const struct lk_tree *t, u32 slot)
{
	const struct bk_node_hdr *h = node_copy(t, slot);
	u32 cap = node_size / 8, k;
	struct bkey_format f;
	struct bkey_format_err ferr;
	const u16 *tab;
	const u64 *words;
	size_t nr, bad;

	memcpy(&f, h->format, sizeof(f));
	/* the table's nr_keys + 1 entries fit its room, node_size / 8 + 1 */
	if (bkey_format_validate(&f, &ferr) || h->nr_keys > cap)
		goto bad;
	tab = (const u16 *)((const u8 *)h + bk_node_tab_off(node_size));
	words = (const u64 *)((const u8 *)h + BK_NODE_WORDS_OFF);
	if (tab[0] || tab[h->nr_keys] > cap ||
	    bkey_stream_walk(&f, words, tab[h->nr_keys], &nr, &bad) != BKEY_STREAM_OK ||
	    nr != h->nr_keys)
		goto bad;
	for (k = 0; k < h->nr_keys; k++)
		if (tab[k + 1] <= tab[k] || tab[k + 1] - tab[k] != ((const u8 *)&words[tab[k]])[0])
			goto bad;
	return 0;
bad:
	pr_err("bkey_kmod: node slot %u: its image is not a node (format, table, %u keys)\n",
	       slot, h->nr_keys);
	return -EINVAL;
}

/* Tree @r's answers in C, and every search slot of it holding the same queries. */
static int prepare_tree(int r)
{
	struct lk_tree *t = &lk[r];
	const struct bk_query *q = lslot_queries(r * threads);
	u32 i, th;
	int ret;

	t->root = tree_root[r];
	t->level = tree_level[r];
	t->first = tree_first[r];
	t->end = tree_end[r];
	t->depth = tree_depth[r];
	if (t->first >= t->end || t->end > nodes_map->max_entries || t->root < t->first ||
	    t->root >= t->end || !t->depth || t->level > 32) {
		pr_err("bkey_kmod: tree %d: root %u (level %u), slots [%u, %u), depth %u: not a tree of the nodes map\n",
		       r, t->root, t->level, t->first, t->end, t->depth);
		return -EINVAL;
	}
	t->nodes = kvmalloc_array(t->end - t->first, nodes_map->value_size, GFP_KERNEL);
	if (!t->nodes)
		return -ENOMEM;
	for (i = t->first; i < t->end; i++) {
		memcpy((void *)node_copy(t, i), node_at(i), nodes_map->value_size);
		ret = check_node(t, i);
		if (ret)
			return ret;
	}
	for (th = 1; th < threads; th++)
		if (memcmp(lslot_queries(r * threads + th), q, lookup_nq * sizeof(*q))) {
			pr_err("bkey_kmod: tree %d: search slot %u holds other queries\n", r,
			       r * threads + th);
			return -EINVAL;
		}
	t->want = kvmalloc_array(lookup_nq, sizeof(*t->want), GFP_KERNEL);
	if (!t->want)
		return -ENOMEM;
	for (i = 0; i < lookup_nq; i++) {
		ret = c_lookup(t, &q[i], &t->want[i]);
		if (ret) {
			pr_err("bkey_kmod: tree %d: C lookup of query %u failed: %d\n", r, i, ret);
			return ret;
		}
	}
	return 0;
}

/* One batch of tree @r's lookups in BPF, checked against C. */
static void stress_lookups(struct worker *w, int r)
{
	u32 slot = r * threads + w->id, i;
	struct bk_result *res = lslot_results(slot);
	int ret;

	memset(res, 0x5a, lookup_nq * sizeof(*res));
	preempt_disable();
	rcu_read_lock();
	ret = bpf_lookups(&lk[r], slot, w->skb, lookup_nq);
	rcu_read_unlock();
	preempt_enable();
	w->lookup_batches++;
	if (ret) {
		note_failure(w, r, "lookups of tree", ret, 0, lookup_nq);
		return;
	}
	for (i = 0; i < lookup_nq; i++) {
		if (result_equal(&res[i], &lk[r].want[i]))
			continue;
		if (!w->mismatches++)
			snprintf(w->first, sizeof(w->first), "tree %d query %u thread %u", r, i, w->id);
	}
	w->lookups += lookup_nq;
}

/* Fastest of the rounds, BPF and C in turns: tree @r's batch of lookups. */
static int time_lookups(int r, struct sk_buff *skb, struct timing *tm)
{
	u64 best_bpf = U64_MAX, best_c = U64_MAX;
	struct bk_result *c_res;
	const struct bk_query *q = lslot_queries(r * threads);
	u32 k, rd;
	int ret = 0;

	c_res = kvmalloc_array(lookup_nq, sizeof(*c_res), GFP_KERNEL);
	if (!c_res)
		return -ENOMEM;
	for (rd = 0; rd < rounds && !ret; rd++) {
		u64 t0, t1, t2;

		preempt_disable();
		rcu_read_lock();
		t0 = ktime_get_ns();
		ret = bpf_lookups(&lk[r], r * threads, skb, lookup_nq);
		t1 = ktime_get_ns();
		for (k = 0; k < lookup_nq && !ret; k++)
			ret = c_lookup(&lk[r], &q[k], &c_res[k]);
		t2 = ktime_get_ns();
		rcu_read_unlock();
		preempt_enable();
		best_bpf = min(best_bpf, t1 - t0);
		best_c = min(best_c, t2 - t1);
		cond_resched();
	}
	for (k = 0; k < lookup_nq && !ret; k++)
		if (!result_equal(&lslot_results(r * threads)[k], &lk[r].want[k]) ||
		    !result_equal(&c_res[k], &lk[r].want[k]))
			ret = -EIO;
	if (ret)
		pr_err("bkey_kmod: tree %d: the timed lookups failed or disagree: %d\n", r, ret);
	tm->lookup_bpf += best_bpf;
	tm->lookup_c += best_c;
	kvfree(c_res);
	return ret;
}

static int get_lookups(void)
{
	int r, ret;

	if (lookup_prog < 0)
		return 0;
	nr_trees = nr_tree_root;
	if (!nr_trees || nr_tree_level != nr_trees || nr_tree_first != nr_trees ||
	    nr_tree_end != nr_trees || nr_tree_depth != nr_trees || !lookup_nq ||
	    lookup_nq > BK_BATCH) {
		pr_err("bkey_kmod: lookups: %d roots, %d levels, %d firsts, %d ends, %d depths, lookup_nq=%u (1..%u): give each per tree\n",
		       nr_tree_root, nr_tree_level, nr_tree_first, nr_tree_end, nr_tree_depth,
		       lookup_nq, BK_BATCH);
		nr_trees = 0;
		return -EINVAL;
	}
	lk_prog = bpf_prog_get_type_dev(lookup_prog, BPF_PROG_TYPE_SOCKET_FILTER, false);
	if (IS_ERR(lk_prog)) {
		ret = PTR_ERR(lk_prog);
		lk_prog = NULL;
		pr_err("bkey_kmod: lookup_prog=%d: %d\n", lookup_prog, ret);
		return ret;
	}
	ret = find_lookup_maps();
	for (r = 0; r < nr_trees && !ret; r++)
		ret = prepare_tree(r);
	return ret;
}

static void put_lookups(void)
{
	int r;

	for (r = 0; r < BK_KMOD_MAX_TREES; r++) {
		kvfree(lk[r].want);
		kvfree(lk[r].nodes);
		lk[r].want = NULL;
		lk[r].nodes = NULL;
	}
	if (lk_prog)
		bpf_prog_put(lk_prog);
	lk_prog = NULL;
	nr_trees = 0;
}

static int check_params(void)
{
	int n = nr_paths ? nr_paths : nr_progs;

	if (nr_paths && nr_progs) {
		pr_err("bkey_kmod: progs= and paths= both given\n");
		return -EINVAL;
	}
	if (!n || nr_formats != n || nr_words != n) {
		pr_err("bkey_kmod: %d programs, %d formats, %d word counts: give one of each per program\n",
		       n, nr_formats, nr_words);
		return -EINVAL;
	}
	/* init cannot be interrupted: keep it well under the hung-task timeout */
	if (!threads || threads > BK_KMOD_MAX_THREADS || !rounds || rounds > 1000 ||
	    stress_ms > 60000) {
		pr_err("bkey_kmod: threads=%u (1..%u), rounds=%u (1..1000), stress_ms=%u (<= 60000)\n",
		       threads, BK_KMOD_MAX_THREADS, rounds, stress_ms);
		return -EINVAL;
	}
	nr_progs = n;
	return 0;
}

static int get_progs(void)
{
	int i, ret;

	for (i = 0; i < nr_progs; i++) {
		struct bpf_prog *prog;
		struct bkey_format_err ferr;

		if (parse_format(formats[i], &kp[i].f) || bkey_format_validate(&kp[i].f, &ferr)) {
			pr_err("bkey_kmod: formats[%d]: not a valid struct bkey_format in hex: %s\n",
			       i, formats[i]);
			return -EINVAL;
		}
		if (words[i] > BK_IN_CAP_WORDS) {
			pr_err("bkey_kmod: words[%d] = %u: more than %u\n", i, words[i], BK_IN_CAP_WORDS);
			return -EINVAL;
		}
		kp[i].nr_words = words[i];
		prog = get_prog(i);
		if (IS_ERR(prog)) {
			pr_err("bkey_kmod: program %d (%s %s): %ld\n", i, nr_paths ? "path" : "fd",
			       nr_paths ? paths[i] : "", PTR_ERR(prog));
			return PTR_ERR(prog);
		}
		kp[i].prog = prog;
		ret = find_maps(prog, i);
		if (ret)
			return ret;
	}
	return 0;
}

static void put_progs(void)
{
	int i;

	for (i = 0; i < BK_KMOD_MAX_PROGS; i++) {
		if (kp[i].prog)
			bpf_prog_put(kp[i].prog);
		kvfree(kp[i].want);
		kvfree(kp[i].words);
		kvfree(kp[i].tab);
		kp[i].prog = NULL;
		kp[i].want = NULL;
		kp[i].words = NULL;
		kp[i].tab = NULL;
	}
}

/* The @t-th online CPU, round robin: each thread gets a CPU of its own
 * where there are enough. */
static unsigned int cpu_for(u32 t)
{
	unsigned int cpu, n = t % num_online_cpus();

	for_each_online_cpu(cpu)
		if (!n--)
			return cpu;
	return cpumask_first(cpu_online_mask);
}

/*
 * Each thread is bound to a CPU of its own (where there are enough) and
 * calls until stress_end_ns.  It is stopped with kthread_stop() once it
 * says it is done: a thread stopped before it ran would never call.
 */
static int stress(struct worker *w)
{
	struct task_struct *task[BK_KMOD_MAX_THREADS];
	u32 t, started;
	int ret = 0;

	stress_end_ns = ktime_get_ns() + (u64)stress_ms * NSEC_PER_MSEC;
	for (started = 0; started < threads; started++) {
		task[started] = kthread_create(stress_thread, &w[started], "bkey_kmod/%u", started);
		if (IS_ERR(task[started])) {
			ret = PTR_ERR(task[started]);
			stress_end_ns = 0;	/* the ones made stop after a pass */
			break;
		}
		get_task_struct(task[started]);
		kthread_bind(task[started], cpu_for(started));
	}
	for (t = 0; t < started; t++)
		wake_up_process(task[t]);
	for (t = 0; t < started; t++) {
		wait_for_completion(&w[t].done);
		kthread_stop(task[t]);
		put_task_struct(task[t]);
	}
	return ret;
}

static int __init bkey_kmod_init(void)
{
	struct worker *w = NULL;
	struct timing tm = {};
	u64 keys = 0, calls = 0, bad = 0, total_keys = 0, lookups = 0;
	unsigned long cpus = 0;
	const char *first = "";
	int ret;
	u32 i, t;

	ret = check_params();
	if (ret)
		return ret;
	ret = get_progs();
	if (ret)
		goto cleanup;
	w = kcalloc(threads, sizeof(*w), GFP_KERNEL);
	if (!w) {
		ret = -ENOMEM;
		goto cleanup;
	}
	for (t = 0; t < threads; t++) {
		w[t].id = t;
		init_completion(&w[t].done);
		w[t].skb = alloc_skb(64, GFP_KERNEL);
		if (!w[t].skb) {
			ret = -ENOMEM;
			goto cleanup;
		}
		memset(qdisc_skb_cb(w[t].skb)->data, 0, sizeof(qdisc_skb_cb(w[t].skb)->data));
	}
	for (i = 0; i < nr_progs; i++) {
		ret = prepare_prog(i);
		if (ret)
			goto cleanup;
		total_keys += kp[i].nr_keys;
	}
	ret = get_lookups();
	if (ret)
		goto cleanup;
	ret = stress(w);
	if (ret)
		goto cleanup;
	for (t = 0; t < threads; t++) {
		keys += w[t].keys;
		calls += w[t].calls;
		bad += w[t].mismatches;
		cpus |= w[t].cpus;
		lookups += w[t].lookups;
		if (w[t].mismatches && !*first)
			first = w[t].first;
	}
	for (i = 0; i < nr_progs; i++) {
		ret = time_prog(i, w[0].skb, &tm);
		if (ret)
			goto cleanup;
	}
	for (i = 0; i < nr_trees; i++) {
		ret = time_lookups(i, w[0].skb, &tm);
		if (ret)
			goto cleanup;
	}
	snprintf(result, sizeof(result),
		 "progs=%d keys_per_pass=%llu threads=%u cpus=0x%lx calls=%llu keys_compared=%llu mismatches=%llu "
		 "node_bpf_ns=%llu node_c_ns=%llu key_bpf_ns=%llu key_c_ns=%llu "
		 "trees=%d lookups_per_pass=%u lookups_compared=%llu lookup_bpf_ns=%llu lookup_c_ns=%llu "
		 "first_mismatch=%s",
		 nr_progs, total_keys, threads, cpus, calls, keys, bad,
		 tm.node_bpf, tm.node_c, tm.key_bpf, tm.key_c,
		 nr_trees, nr_trees * lookup_nq, lookups, tm.lookup_bpf, tm.lookup_c,
		 *first ? first : "none");
	pr_info("bkey_kmod: %s\n", result);
	ret = 0;
cleanup:
	if (w)
		for (t = 0; t < threads; t++)
			consume_skb(w[t].skb);
	kfree(w);
	put_progs();
	put_lookups();
	return ret;
}

static void __exit bkey_kmod_exit(void)
{
}

module_init(bkey_kmod_init);
module_exit(bkey_kmod_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("bkey-bpf: generated unpack programs called from kernel C");
