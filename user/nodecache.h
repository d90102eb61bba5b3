/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Btrees loaded into BPF: node images in a nodes map shared by every tree
 * of a node cache, and a cache of shape programs (gen/abi.h) keyed by the
 * shape: key_u64s and the six widths.  Each shape has one lookup and one
 * scan program, shared by every node of that shape in every tree whatever
 * its offsets, and refcounted by them: the last node of a shape to go
 * releases them.  The shape's index in the prog array is the format id in
 * the nodes' headers; child pointers and leaf links are slots of the cache.
 */
#ifndef USER_NODECACHE_H
#define USER_NODECACHE_H

#include "btree.h"
#include "gen.h"

#define BK_SHAPE_BYTES	(1 + BKEY_NR_FIELDS)	/* key_u64s, widths */

struct bk_fmt_entry {
	uint8_t			shape[BK_SHAPE_BYTES];
	struct bkey_format	f;		/* the first format of the shape seen */
	uint32_t		fid;
	uint32_t		refs;		/* nodes using it */
	struct bk_loaded	lookup;		/* root-to-leaf lookups */
	struct bk_loaded	scan;		/* unpacks a run of a node's keys */
	double			prepare_us;	/* both: generate + verify + JIT */
	long long		kernel_bytes;	/* both: kernel memory (memcg growth) */
};

struct bk_fmt_cache {
	struct bk_fmt_entry	*e;		/* by fid */
	uint32_t		nr, cap;
	uint32_t		*slot;		/* open addressing: fid + 1, 0 = empty */
	uint32_t		nr_slots;
};

/*
 * One node cache for every btree of a process, as bcachefs has: node
 * slots in one nodes map (all of node_size), the shapes' programs, the
 * lookup and scan runtimes they share.  Trees take slots from it; a
 * shape's programs serve every tree's nodes of that shape.
 */
struct bk_node_cache {
	unsigned		node_size;
	uint32_t		nr_slots, nr_used;	/* slots handed out in order */
	/* runs at once: each has a run slot of the lookup and scan maps
	 * (gen/abi.h), the programs are shared */
	uint32_t		nr_run_slots;
	/*
	 * The kernel's loops: with may_goto, the search loops and the scans
	 * walk the key table in one loop; without it (before 6.9), lookups
	 * search unrolled and scans walk in bpf_loop callbacks (the JIT
	 * needed).  -EOPNOTSUPP from the open if neither.  The environment's
	 * BKEY_LOOPS=bpf_loop takes the second where the kernel has both.
	 */
	struct bk_features	ft;
	/*
	 * The lookups' node search: may_goto's loop, else unrolled (as fast,
	 * and it needs neither the JIT nor tail calls mixed with subprograms).
	 * BKEY_SEARCH=may_goto|unrolled|bpf_loop picks one for measuring.
	 */
	enum bk_search_loop	search_loop;
	struct bk_lookup_rt	lr;
	struct bk_runtime	srt;		/* the scan programs' ctl and out */
	struct bk_fmt_cache	cache;
	int			*prog_fd_by_fid;
	/* the programs' kernel memory: the memory cgroup's growth over each
	 * shape's loads (program, BTF, JIT image), and the counter read */
	long long		prog_kernel_bytes;
	const char		*mem_method;
	uint32_t		programs_loaded;	/* over the cache's life */
	/* the first failure to empty a released shape's prog array slot:
	 * the array still holds that program (bk_tree_unload() returns it) */
	int			release_err;
	/* pinned (bk_tree_pin()): the prog array keeps its programs when
	 * this process lets go of them, for the pinned tree's users */
	bool			pinned;
};

int bk_node_cache_open(struct bk_node_cache *nc, unsigned node_size, uint32_t nr_slots);
/* Why a node cache cannot open on this kernel (for -EOPNOTSUPP). */
#define BK_NODE_CACHE_NO_SHAPE \
	"this kernel has neither may_goto (6.9+) nor bpf_loop with the JIT (5.17+, " \
	"net.core.bpf_jit_enable=1): no program shape can walk a node"
/* The node search and scan shapes @nc's programs take, for reports. */
const char *bk_node_cache_shapes(const struct bk_node_cache *nc);
/* The same as a tag: "may_goto", or the search's loop + the scans' shape. */
const char *bk_node_cache_loops_tag(const struct bk_node_cache *nc);
/* The same, for @nr_run_slots runs at once (threads, each with a worker). */
int bk_node_cache_open_runs(struct bk_node_cache *nc, unsigned node_size, uint32_t nr_slots,
			    uint32_t nr_run_slots);
/* Every tree must be unloaded first. */
void bk_node_cache_close(struct bk_node_cache *nc);

struct bk_tree_rt {
	const struct bk_btree	*bt;
	struct bk_node_cache	*nc;
	struct bk_node_cache	own;		/* nc when the tree was loaded alone */
	uint32_t		base;		/* node i is slot base + i */
	uint32_t		run_slot;	/* bk_tree_lookup/scan's run slot (0) */
	uint32_t		*fid_of_node;
	uint32_t		nr_loaded;	/* nodes holding a reference */
	uint32_t		nr_formats;	/* distinct node formats */
	uint32_t		nr_shapes;	/* distinct shapes among its nodes */
	uint32_t		new_shapes;	/* of them, loaded by this tree */
	long long		prog_kernel_bytes;	/* of the programs this tree loaded */
	double			prepare_us_p50, prepare_us_p99;	/* of its new shapes */
	double			prepare_us_sum;
	double			cached_node_load_ns;	/* p50 of a node whose shape was cached */
	struct bk_lookup_stats	st;
	int			last_status;	/* of a failed run: BK_ERR_* or -errno */
	uint32_t		last_node;	/* and the node it stopped at (the tree's) */
	uint32_t		last_slot;	/* the same as a slot of the cache */
};

/*
 * Loads @bt into @nc (NULL: a cache of its own, sized for it): node slots,
 * node images, the programs of shapes the cache does not have yet.  A
 * verifier rejection prints its log and our listing to @log_out.
 */
int bk_tree_load(struct bk_tree_rt *t, const struct bk_btree *bt, struct bk_node_cache *nc,
		 FILE *log_out);
/* The same in a cache of its own with @nr_run_slots run slots (a tree to pin). */
int bk_tree_load_runs(struct bk_tree_rt *t, const struct bk_btree *bt, uint32_t nr_run_slots,
		      FILE *log_out);
/* Returns 0, or the -errno of a prog array slot that could not be emptied. */
int bk_tree_unload(struct bk_tree_rt *t);

/*
 * Node @node leaves the cache: it drops its shape's reference, and the
 * shape's last node releases the shape's programs (and empties its prog
 * array slot).  The node must not be looked up or scanned after.
 */
#define BK_NODE_DROPPED	UINT32_MAX
void bk_tree_drop_node(struct bk_tree_rt *t, uint32_t node);

/*
 * Looks up @n positions (batches of BK_BATCH) in the kernel; out[i] gets
 * the first key >= pos[i] (found = 0 if none), with node and index.
 */
int bk_tree_lookup(struct bk_tree_rt *t, const struct bpos *pos, size_t n,
		   struct bk_result *out);

/*
 * The @count keys from the first one >= @from, crossing leaves: a lookup,
 * then each leaf's run of keys unpacked by its format's scan program.
 * out[i] as for lookups; *got may be less than @count at the end.
 */
int bk_tree_scan(struct bk_tree_rt *t, struct bpos from, size_t count,
		 struct bk_result *out, size_t *got);

/*
 * Why the last failed lookup or scan stopped: the first problem in node
 * t->last_node's image ("node N key I: u64s = 0", "...points outside the
 * node", ...).
 */
void bk_tree_bad_reason(const struct bk_tree_rt *t, char *buf, size_t len);

/*
 * One thread's runs over a node cache's trees: its run slot's view of the
 * maps, and what its runs counted and where one failed.  Workers of
 * different run slots look up and scan the same trees at once.
 */
struct bk_worker {
	uint32_t		run_slot;
	struct bk_lookup_rt	lr;
	struct bk_runtime	srt;
	struct bk_lookup_stats	st;
	int			last_status;
	uint32_t		last_node, last_slot;
};

/* A worker on run slot @run_slot (< nc->nr_run_slots): -EINVAL if none. */
int bk_worker_init(struct bk_worker *w, const struct bk_node_cache *nc, uint32_t run_slot);
int bk_tree_lookup_on(struct bk_tree_rt *t, struct bk_worker *w, const struct bpos *pos,
		      size_t n, struct bk_result *out);
int bk_tree_scan_on(struct bk_tree_rt *t, struct bk_worker *w, struct bpos from, size_t count,
		    struct bk_result *out, size_t *got);
/* bk_tree_bad_reason() for a worker's failed run */
void bk_worker_bad_reason(const struct bk_tree_rt *t, const struct bk_worker *w, char *buf,
			  size_t len);

/*
 * The value words of a result, read from the node image in the map; NULL
 * if they do not lie inside the node (it changed since the lookup).
 */
const uint64_t *bk_tree_result_val(const struct bk_tree_rt *t, const struct bk_result *r);

#endif
