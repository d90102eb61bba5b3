/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The contract between generated unpack programs and their callers.
 *
 * A program reads a bset-style run of keys from the "in" map value (keys
 * walked by u64s, 8-byte aligned) and writes one 40-byte struct bkey per
 * key into the "out" map value.  The "ctl" map value carries the
 * arguments in and the result out.  One program run unpacks the whole run.
 * Plain C types only, so BPF C code can include it too.
 *
 * Runs are re-entrant.  Every map a run writes (ctl, in, out; for
 * searches and lookups the search slot) is an array with one element per
 * slot, and a run's context names its slot: the socket filter's
 * __sk_buff cb[0], which the caller sets through the test run's ctx_in.
 * The program looks its slot's elements up (an index past the array
 * fails the run with BK_ERR_ARGS), so runs of different slots share
 * nothing they write, and programs are shared by all of them.  A caller
 * owns a slot the way a C caller owns its buffer: one run at a time.
 * The nodes map and the prog array are read-only to programs.
 */
#define BK_CTX_OFF_SLOT		48	/* offsetof(struct __sk_buff, cb[0]) */
#ifndef GEN_ABI_H
#define GEN_ABI_H

/*
 * Word indices are 16 bits: programs bound their arguments with a mask
 * (bk_run_words() and bk_run_keys() refuse out-of-range ones before the
 * program sees them).
 */
#define BK_IN_CAP_WORDS		65535u			/* ~512 KiB of keys per run */
#define BK_IDX_MASK		0xffffu
#define BK_IN_SLACK		128u			/* verifier headroom past the end */
#define BK_IN_VALUE_SIZE	((BK_IDX_MASK + 1) * 8u + BK_IN_SLACK)
/* a key takes at least a word; the table walk writes key i (i < 2^16) to out[i] */
#define BK_OUT_CAP_KEYS		(BK_IDX_MASK + 1u)
#define BK_OUT_VALUE_SIZE	(BK_OUT_CAP_KEYS * 40u)

/*
 * The table walk: tab[i] is the word offset in "in" of key i, and
 * tab[i + 1] - tab[i] must equal that key's u64s (the program checks it),
 * so a key's address never waits for the previous key's load.  The table
 * follows struct bk_ctl in the ctl map's value, at BK_TAB_OFF: one base
 * register reaches a run's arguments, its results and its table.
 */
#define BK_TAB_ENTRIES		(BK_IDX_MASK + 2u)
#define BK_CTL_OFF_TMPL		64u	/* a shape program's template (below) */
#define BK_TAB_OFF		128u
#define BK_CTL_VALUE_SIZE	(BK_TAB_OFF + BK_TAB_ENTRIES * 2u + 64u)

struct bk_ctl {
	unsigned int	status;		/* out: BK_OK or BK_ERR_* */
	unsigned int	in_pos;		/* out: word index where the walk stopped */
	unsigned int	out_pos;	/* out: index just past the last bkey written */
	/* what programs read, in bytes: words of in (by u64s) or entries of
	 * the key table (by table), and bkeys of out; bk_run_words() and
	 * bk_run_keys() set them.  Programs never write them, so repeated
	 * runs repeat */
	unsigned int	arg_in;
	unsigned int	arg_end;
	unsigned int	arg_out;
	/* what programs write, in bytes: where the walk stopped (the run
	 * turns it into in_pos/out_pos); the bpf_loop shape also keeps its
	 * walk state here between callbacks */
	unsigned int	cur_in;
	unsigned int	cur_out;
	unsigned int	node;		/* the node walked, for programs reading a nodes map */
	/* who holds this run slot (a pinned tree's users claim one each);
	 * programs never read it */
	unsigned int	owner;
};

/*
 * Shape programs are specialized on key_u64s and the six field widths
 * only, which fix every bit position; one serves every format of its
 * shape.  The rest of the format comes at run time:
 *  - unpacking reads an unpacked-key template, a struct bkey whose every
 *    field holds that field's offset (a zero-width field's offset is its
 *    value) and whose header bytes hold, as a u32, what the header
 *    transform adds (bk_unpack_template()).  A field is its raw bits plus
 *    the template's slot of it, added in the slot's width; a field as
 *    wide as its slot has offset 0 (spec 9.1) and needs no template.  It
 *    sits in the ctl value at BK_CTL_OFF_TMPL (the in map) or in the node
 *    header (nodes maps);
 *  - searching reads the node header's format (its field offsets).
 */
#define BK_TMPL_SIZE		40u

#define BK_CTL_OFF_STATUS	0
#define BK_CTL_OFF_IN_POS	4
#define BK_CTL_OFF_OUT_POS	8
#define BK_CTL_OFF_ARG_IN	12
#define BK_CTL_OFF_ARG_END	16
#define BK_CTL_OFF_ARG_OUT	20
#define BK_CTL_OFF_CUR_IN	24
#define BK_CTL_OFF_CUR_OUT	28
#define BK_CTL_OFF_NODE		32

/*
 * Status codes.  A program stops at a bad key with BK_ERR_BAD_KEY and
 * in_pos at that key; the run (bk_run_words(), bk_run_keys()) then names
 * the reason with the reference's check (1..5, equal to enum
 * bkey_stream_err), which keeps that cold code out of every generated
 * program.
 */
enum bk_status {
	BK_OK			= 0,
	BK_ERR_U64S_ZERO	= 1,
	BK_ERR_PAST_END		= 2,
	BK_ERR_SHORT_KEY	= 3,
	BK_ERR_BAD_FORMAT	= 4,
	BK_ERR_VAL_TOO_BIG	= 5,
	BK_ERR_BAD_KEY		= 6,	/* from the program: the key at in_pos is bad */
	/* a node's header lies (ctl->node names the node) */
	BK_ERR_NODE_SHAPE	= 7,	/* its format is not the program's */
	BK_ERR_NODE_LEVEL	= 8,	/* a child not one level below its parent,
					 * or a next leaf that is no leaf */
	BK_ERR_NODE_PTR		= 9,	/* a child or next leaf outside the tree */
	BK_ERR_LEAF_HOPS	= 10,	/* more next-leaf hops than the tree has nodes */
	BK_ERR_NODE_FID		= 11,	/* (userspace) a format id past the program table */
	BK_ERR_NODE_TMPL	= 12,	/* its unpack template is not its format's,
					 * or its format breaks 9.1's offset rules */
	BK_ERR_ARGS		= 16,	/* a key offset outside the in map */
	BK_ERR_OUT_FULL		= 17,	/* output area exhausted */
	BK_ERR_LOOP_LIMIT	= 18,	/* the kernel's loop budget ran out */
	BK_ERR_TAIL		= 19,	/* a run's lookups (or tail calls) are spent:
					 * run again from ctl->node */
};

/*
 * A btree node as programs read it, one map element per node, every
 * element of a nodes map node_size bytes of keys big:
 *
 *   this header, at 0
 *   the bset's words (keys walked by u64s), at BK_NODE_WORDS_OFF, with
 *     room for node_size bytes
 *   the key table (u16 word offsets, nr_keys + 1 entries), at
 *     bk_node_tab_off(node_size)
 *
 * Every field is read by the programs and by every C reader (the
 * loader's node cache, the module); the table's place follows from the
 * map's node size, so no field says it.
 */
struct bk_node_hdr {
	unsigned char	format[56];	/* struct bkey_format */
	unsigned int	nr_keys;
	unsigned int	level;		/* 0 = leaf */
	unsigned int	format_id;	/* its program's index in the prog array */
	/* a leaf: the next leaf in key order + 1 (a slot of the map), 0 for
	 * the last one.  Readers walk leaves by it, never by slot order.  A
	 * real leaf may end below its max_key: a position past its last key
	 * is answered by the next leaf's first key */
	unsigned int	next_leaf;
	unsigned int	reserved[12];	/* zero */
	/* shape programs: the format's unpacked-key template (see above) */
	unsigned char	tmpl[BK_TMPL_SIZE];
};

#define BK_NODE_OFF_FORMAT	0	/* struct bkey_format: offsets at +8 */
#define BK_NODE_OFF_TMPL	120
#define BK_NODE_WORDS_OFF	160	/* sizeof(struct bk_node_hdr) */

/* Where a node's key table starts, in an element of a nodes map of @node_size. */
static inline unsigned int bk_node_tab_off(unsigned int node_size)
{
	return BK_NODE_WORDS_OFF + node_size;
}

/*
 * Size of a nodes-map element for @node_size bytes of keys: the table's
 * node_size / 8 + 1 entries at most, and slack; a multiple of 8, which is
 * the stride of an mmap'd array map's elements.
 */
static inline unsigned int bk_node_value_size(unsigned int node_size)
{
	return (bk_node_tab_off(node_size) + 2 * (node_size / 8 + 1) + 64 + 7) & ~7u;
}

/* One node search (bk_gen_search): the position in, the answer out. */
struct bk_search_ctl {
	unsigned long long inode, offset;
	unsigned int	snapshot;
	unsigned int	node;		/* element of the nodes map */
	unsigned int	status;		/* out: BK_OK or BK_ERR_* */
	unsigned int	idx;		/* out: first key >= the position, or nr_keys */
	unsigned int	lossy;		/* out: enum bkey_pack_pos_ret used */
	unsigned int	root_level;	/* lookups: the root's level (a root that says
					 * otherwise is refused) */
	/* the program's scratch, in the map so that the verifier sees
	 * unknown scalars (gen/search.c): the packed search key, its lowest
	 * key word pre-shifted */
	unsigned long long packed[5];
	unsigned long long pshift;
	unsigned int	lo, hi;		/* the binary search's bounds between passes */
	/* lookups (bk_gen_search with .lookup): a batch of queries */
	unsigned int	q;		/* the query being looked up */
	unsigned int	nq;		/* queries in the batch */
	unsigned int	root;		/* the root node */
	unsigned int	root_fid;	/* its program's index in the prog array */
	/* lookups this run may still start: a run ends between lookups, so
	 * a lookup's walk never spans two runs (the driver sets it to what
	 * the kernel's 33 tail calls per run allow at the tree's depth) */
	unsigned int	budget;
	/* next-leaf hops of the query being looked up: more than the tree
	 * has nodes means the next-leaf links loop */
	unsigned int	hops;
	/* the tree's nodes are slots [slot_first, slot_end) of the nodes
	 * map: a child or next leaf outside them is refused */
	unsigned int	slot_first, slot_end;
	/* lookups a run may start: a run that spends its budget refills it
	 * from here, so each of the caller's repeats starts with a full one */
	unsigned int	per_run;
	unsigned int	pad;
};

#define BK_BATCH	1024	/* queries per batch */

/*
 * One search slot: the search ctl, then the batch's queries and results,
 * so that one register reaches them all.
 */
#define BK_LSLOT_OFF_QUERIES	192	/* the ctl, with room to grow */
#define BK_LSLOT_OFF_RESULTS	(BK_LSLOT_OFF_QUERIES + BK_BATCH * 24)
#define BK_LSLOT_SIZE		(BK_LSLOT_OFF_RESULTS + BK_BATCH * 56)

struct bk_query {
	unsigned long long inode, offset;
	unsigned int	snapshot, pad;
};

/* The first key >= the query: unpacked, where it was, or found = 0. */
struct bk_result {
	unsigned char	key[40];	/* struct bkey */
	unsigned int	node, idx;
	unsigned int	found, pad;
};

/* Lookups a run may start at @depth tail calls a lookup: as many whole
 * lookups as the kernel's 33 tail calls per run allow. */
static inline unsigned int bk_lookups_per_run(unsigned int depth)
{
	return depth && depth <= 33 ? 33 / depth : 1;
}

/*
 * The search ctl for a batch of @nq lookups (queries from @q0 on) from
 * the root, as the root's program expects it on the batch's first run.
 * Its drivers, bk_lookup_batch() and kmod/, then run the program of
 * c->node until the status is not BK_ERR_TAIL, with c->status = ~0 and
 * c->budget = @per_run before each run.
 */
static inline void bk_lookup_start(struct bk_search_ctl *c, const struct bk_query *q0,
				   unsigned int nq, unsigned int root, unsigned int root_level,
				   unsigned int root_fid, unsigned int slot_first,
				   unsigned int slot_end, unsigned int per_run)
{
	c->q = 0;
	c->nq = nq;
	c->root = root;
	c->root_level = root_level;
	c->node = root;
	c->hops = 0;
	c->slot_first = slot_first;
	c->slot_end = slot_end;
	c->root_fid = root_fid;
	c->per_run = per_run;
	c->inode = q0->inode;
	c->offset = q0->offset;
	c->snapshot = q0->snapshot;
}

#define BK_SCTL_OFF_INODE	0
#define BK_SCTL_OFF_OFFSET	8
#define BK_SCTL_OFF_SNAPSHOT	16
#define BK_SCTL_OFF_NODE	20
#define BK_SCTL_OFF_STATUS	24
#define BK_SCTL_OFF_IDX		28
#define BK_SCTL_OFF_LOSSY	32
#define BK_SCTL_OFF_ROOT_LEVEL	36
#define BK_SCTL_OFF_PACKED	40
#define BK_SCTL_OFF_PSHIFT	80
#define BK_SCTL_OFF_LO		88
#define BK_SCTL_OFF_HI		92
#define BK_SCTL_OFF_Q		96
#define BK_SCTL_OFF_NQ		100
#define BK_SCTL_OFF_ROOT	104
#define BK_SCTL_OFF_ROOT_FID	108
#define BK_SCTL_OFF_BUDGET	112
#define BK_SCTL_OFF_HOPS	116
#define BK_SCTL_OFF_SLOT_FIRST	120
#define BK_SCTL_OFF_SLOT_END	124
#define BK_SCTL_OFF_PER_RUN	128

#endif /* GEN_ABI_H */
