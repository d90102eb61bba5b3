/* SPDX-License-Identifier: GPL-2.0 */
/*
 * gen: turns a struct bkey_format into a BPF unpack program, attaches BTF
 * func_info and line_info, loads it and runs it.  A library: it knows
 * nothing of the loader.
 */
#ifndef GEN_GEN_H
#define GEN_GEN_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "bkey.h"
#include "abi.h"
#include "emit.h"

/*
 * Every generated program is a socket filter run with BPF_PROG_TEST_RUN.
 * Its context is unused (the contract is gen/abi.h's maps); what the
 * type decides is the privilege it needs.  Loading one needs CAP_BPF,
 * and CAP_PERFMON so that the verifier does not also walk each branch's
 * mispredicted path (Spectre v1): with CAP_BPF alone our loops exceed
 * its limits ("The sequence of 8193 jumps is too complex").  XDP, which
 * this was, needs CAP_NET_ADMIN as well, and its test run with repeat > 1
 * goes through the XDP dispatcher.  Measured here (6.18): an empty
 * program's test run takes 58 ns in the kernel as a socket filter and
 * 63-77 ns as XDP; BPF_PROG_TYPE_SYSCALL needs no CAP_PERFMON for an
 * empty program, but it must be sleepable, which rules out the prog
 * array the lookups tail-call through, and its test run reports no
 * duration.
 */
#define BK_PROG_TYPE		BPF_PROG_TYPE_SOCKET_FILTER

/* ---- The per-field plan (spec 5.3), shared by every back end ---- */

enum bk_field_kind {
	BK_FIELD_CONST,		/* 0 bits: the offset is the value */
	BK_FIELD_WORD,		/* inside one word */
	BK_FIELD_STRADDLE,	/* low part in word w, high part in word w + 1 */
};

struct bk_field_plan {
	uint8_t		field;
	uint8_t		kind;
	uint8_t		bits;
	uint8_t		word;		/* word holding the field's low bit */
	uint8_t		sh;		/* the low bit's position in that word */
	uint8_t		slot_off;	/* where it goes in struct bkey */
	uint8_t		slot_size;	/* 4 or 8 */
	uint16_t	kbit;		/* the low bit's position in K */
	uint64_t	offset;
};

struct bk_plan {
	struct bkey_format	f;
	unsigned		key_u64s;
	/* header: w = (w & 0xffffff) + header_add as one 32-bit operation */
	uint32_t		header_add;
	struct bk_field_plan	fp[BKEY_NR_FIELDS];
};

/* Validates @f (spec 9.1) and plans it.  -EINVAL with *err on a bad format. */
int bk_plan_format(const struct bkey_format *f, struct bk_plan *plan,
		   struct bkey_format_err *err);
/* The readable source line for a field, as BTF line_info shows it. */
void bk_field_line(const struct bk_field_plan *fp, char *buf, size_t len);

/* ---- Program shapes ---- */

enum bk_shape {
	BK_SHAPE_AUTO,		/* pick the best the kernel supports */
	BK_SHAPE_MAY_GOTO,	/* one loop bounded by may_goto (6.9+) */
	BK_SHAPE_BPF_LOOP,	/* bpf_loop() callback per chunk of keys (5.17+) */
};

const char *bk_shape_name(enum bk_shape s);

/* How a program finds the next key. */
enum bk_walk {
	BK_WALK_U64S,		/* k += u64s, as a bset is walked */
	BK_WALK_TABLE,		/* from a table of key offsets (may_goto shape) */
};

const char *bk_walk_name(enum bk_walk w);

/*
 * Split 8-byte stores at bkey+4 where the verifier checks alignment:
 * architectures without efficient unaligned access (riscv64); x86-64 and
 * arm64 take any offset.
 */
static inline bool bk_strict_align_default(void)
{
#if defined(__x86_64__) || defined(__aarch64__)
	return false;
#else
	return true;
#endif
}

/* The most keys one loop pass or bpf_loop callback unpacks (--chunk). */
#define BK_CHUNK_MAX	8

struct bk_gen_opts {
	enum bk_shape	shape;		/* must not be AUTO here */
	enum bk_walk	walk;
	bool		strict_align;	/* split 8-byte stores at bkey+4 */
	bool		annotate;	/* per-instruction comments in listings */
	unsigned	chunk;		/* keys per loop pass or bpf_loop callback, 1..BK_CHUNK_MAX */
	/* a shape program (gen/abi.h): offsets from the template at run
	 * time; the may_goto table walk only */
	bool		by_shape;
	/* map fds referenced by the program (any value for listings): arrays
	 * of one element per slot (gen/abi.h) */
	int		ctl_fd, in_fd, out_fd;	/* ctl also holds the key table */
	/*
	 * The table walk over a btree node instead of the in/tab maps, if
	 * node_size is not 0: node ctl->node of map nodes_fd (node_size
	 * bytes of keys, the table after them, gen/abi.h).
	 */
	int		nodes_fd;
	unsigned	node_size;
};

struct bk_prog {
	struct bk_plan	plan;
	enum bk_shape	shape;
	enum bk_walk	walk;
	bool		by_shape;	/* serves every format of its shape */
	char		name[16];	/* bpf prog name, <= 15 chars */
	char		func_name[64];	/* BTF name of the main function */
	char		file_name[80];	/* BTF line_info file name */
	struct bk_emit	e;
};

/*
 * Frees @p's buffers (its emitter's).  A bk_prog starts zeroed and may
 * generate any number of programs in turn before this.
 */
static inline void bk_prog_release(struct bk_prog *p)
{
	if (p)
		bk_emit_release(&p->e);
}

/* Program name from the format: stable, at most 15 characters. */
void bk_prog_names(const struct bkey_format *f, char name[16], char func_name[64]);
/* The same from @f's shape (key_u64s, widths) alone: "bk<K>s<hash>". */
void bk_prog_names_shape(const struct bkey_format *f, char name[16], char func_name[64]);

/* The unpacked-key template of @f (gen/abi.h): BK_TMPL_SIZE bytes. */
void bk_unpack_template(const struct bkey_format *f, void *tmpl);

/* Where a shape program reads its template: the u64 at @reg + @off. */
struct bk_tmpl_at {
	int	reg;
	int	off;
};

/* Generates the unpack program for @f.  -EINVAL with *err on a bad format. */
int bk_gen_unpack(const struct bkey_format *f, const struct bk_gen_opts *o,
		  struct bk_prog *p, struct bkey_format_err *err);

/*
 * Unpacks the packed key at r1 into the bkey at r4 (r2: its first 4
 * bytes); clobbers r0, r2.  For generators that unpack a key they found.
 */
void bk_emit_unpack_packed(struct bk_emit *e, const struct bk_plan *P, bool strict_align,
			   const struct bk_tmpl_at *tmpl);

/*
 * Goes to @bad unless the node at @node_reg is of @f: its format's first
 * word (key_u64s, nr_fields, the widths: the shape) equals @f's, compared
 * against an immediate, and with @exact its offsets too.  r1 and r2 are
 * clobbered.  A program relies on the widths it was made for; a node
 * whose format id points at another shape's program is refused.
 */
void bk_emit_check_format(struct bk_emit *e, int node_reg, const struct bkey_format *f,
			  bool exact, int bad);

/*
 * Goes to @bad unless the node's unpack template agrees with its format
 * (a shape program packs with one and unpacks with the other); r1, r2
 * clobbered.
 */
void bk_emit_check_template(struct bk_emit *e, const struct bk_plan *P, int node_reg, int bad);

/* ---- Node search (gen/search.c) ---- */

/*
 * The binary search's loop.  MAY_GOTO needs 6.9+; the other two load
 * without it.  UNROLLED has no loop: the verifier walks every step (at
 * most 17 for 2^16 keys).  BPF_LOOP runs one step per bpf_loop()
 * callback: it needs the JIT on 6.1, and for lookups a JIT that mixes
 * tail calls with bpf-to-bpf calls (x86-64 5.10+,
 * arm64 6.0+; bk_probe_features() tells).
 */
enum bk_search_loop {
	BK_SEARCH_MAY_GOTO,
	BK_SEARCH_UNROLLED,
	BK_SEARCH_BPF_LOOP,
};

const char *bk_search_loop_name(enum bk_search_loop loop);

struct bk_search_opts {
	unsigned	node_size;	/* bytes of keys per node in the nodes map */
	bool		annotate;
	bool		strict_align;
	bool		by_shape;	/* offsets from the node's format at run time */
	enum bk_search_loop	loop;	/* how the binary search loops */
	/* an array of search slots: struct bk_search_ctl, and for lookups
	 * the batch's queries and results after it (gen/abi.h) */
	int		ctl_fd;
	int		nodes_fd;	/* the nodes map: struct bk_node_hdr, words, table */
	/*
	 * Lookups: after the search, descend (interior node: tail call the
	 * child's program) or answer (leaf: unpack the key into results[q])
	 * and start the next query of the batch at the root.
	 */
	bool		lookup;
	int		progs_fd;	/* prog array: format id -> lookup program */
};


/*
 * Generates the search program of @f: the first key >= ctl's position in
 * node ctl->node, by lossy packing and packed comparison.  Named
 * "bs<key_u64s>_<hash>" (the unpack program is "bk...").
 */
int bk_gen_search(const struct bkey_format *f, const struct bk_search_opts *o,
		  struct bk_prog *p, struct bkey_format_err *err);

/* ---- Lookup runtime (gen/lookup.c) ---- */

/*
 * The maps lookups share, and one search slot's view of them: ctl,
 * queries and results are slot @slot's (slot 0 as opened); a view made by
 * bk_lookup_rt_slot() shares the maps and owns nothing.
 */
struct bk_lookup_rt {
	int			ctl_fd, nodes_fd, progs_fd;
	unsigned		node_size, node_value_size;
	uint32_t		nr_nodes;
	uint32_t		nr_slots, slot;
	bool			view;
	void			*slots;		/* nr_slots search slots, mmap'd */
	struct bk_search_ctl	*ctl;
	void			*nodes;		/* nr_nodes node images, mmap'd */
	struct bk_query		*queries;	/* BK_BATCH */
	struct bk_result	*results;	/* BK_BATCH */
};

struct bk_lookup_stats {
	unsigned long		runs;		/* program runs */
	unsigned long		split;		/* lookups that spanned two runs (0) */
	unsigned long long	run_ns;		/* the kernel's time in them */
};

/* One search slot; bk_lookup_rt_open_slots() for runs from several threads. */
int bk_lookup_rt_open(struct bk_lookup_rt *lr, unsigned node_size, uint32_t nr_nodes,
		      uint32_t max_formats);
int bk_lookup_rt_open_slots(struct bk_lookup_rt *lr, unsigned node_size, uint32_t nr_nodes,
			    uint32_t max_formats, uint32_t nr_slots);
/* The same for maps opened elsewhere (checked, mapped; the fds are @lr's, also on failure). */
int bk_lookup_rt_adopt(struct bk_lookup_rt *lr, int ctl_fd, int nodes_fd, int progs_fd,
		       unsigned node_size);
/* A view of @lr for slot @slot (< nr_slots): closing it is a no-op. */
void bk_lookup_rt_slot(const struct bk_lookup_rt *lr, uint32_t slot, struct bk_lookup_rt *view);
void bk_lookup_rt_close(struct bk_lookup_rt *lr);
const struct bk_node_hdr *bk_lookup_node(const struct bk_lookup_rt *lr, uint32_t node);
/* prog array slot @fid := @prog_fd (a lookup program of that format) */
int bk_lookup_set_prog(struct bk_lookup_rt *lr, uint32_t fid, int prog_fd);
/* A tree as its lookups are driven: its programs, its nodes, its root. */
struct bk_lookup_tree {
	const int	*prog_fd_by_fid;	/* a lookup program per format id */
	uint32_t	nr_fids;		/* entries of prog_fd_by_fid */
	uint32_t	slot_first, slot_end;	/* its nodes: these slots */
	uint32_t	root;			/* a slot among them */
	uint32_t	root_level;		/* the root's level (depth - 1) */
	/* tail calls a lookup takes at most: the depth, + 1 if its leaves
	 * may end below their max keys (a hop to the next leaf) */
	unsigned	depth;
	/* lookups a run may start: 0 = as many as the kernel's 33 tail calls
	 * per run allow at @depth (a test sets more, so that walks stop
	 * below the root and are resumed) */
	unsigned	per_run;
};

/*
 * Looks up queries[0, nq) in @tree: results[i] gets the first key >=
 * queries[i].  Returns 0 with *status BK_OK, or a BK_ERR_* status for a
 * bad node (ctl->node names it: BK_ERR_NODE_FID if its format id has no
 * program); -ELOOP if a run finished no lookup, or -errno.  Every run
 * finishes a lookup or fails, so it makes at most nq + 1 runs.
 */
int bk_lookup_batch(struct bk_lookup_rt *lr, const struct bk_lookup_tree *tree, uint32_t nq,
		    uint32_t *status, struct bk_lookup_stats *st);

/* ---- Kernel side ---- */

struct bk_features {
	bool	may_goto;
	bool	bpf_loop;
	bool	jit;			/* programs get jited code */
	/* tail calls in programs with bpf-to-bpf calls: a lookup whose
	 * search is in bpf_loop callbacks */
	bool	tail_call_subprog;
	enum bk_shape best;
	enum bk_walk best_walk;		/* for nodes that carry a key table */
	char	why[200];		/* why best was picked */
};

/* Probes the running kernel (needs bpf() permission). */
int bk_probe_features(struct bk_features *ft);

/*
 * Maps shared by all unpack programs of a process, mmap'd, with one
 * element per slot (gen/abi.h); ctl, in, out and tab are slot @slot's
 * (slot 0 as opened).  A view made by bk_runtime_slot() shares the maps
 * and owns nothing.
 */
struct bk_runtime {
	int		ctl_fd, in_fd, out_fd;
	uint32_t	nr_slots, slot;
	bool		view;
	void		*ctl_mem, *in_mem, *out_mem;	/* every slot's */
	struct bk_ctl	*ctl;
	uint64_t	*in;		/* BK_IN_CAP_WORDS words */
	struct bkey	*out;		/* BK_OUT_CAP_KEYS keys */
	uint16_t	*tab;		/* BK_TAB_ENTRIES key offsets, in the ctl map */
};

int bk_runtime_open(struct bk_runtime *rt);
/*
 * The runtime of maps opened elsewhere (pinned ones, say): checks their
 * types and sizes and maps them.  Takes the fds: closing @rt closes them,
 * also on failure.
 */
int bk_runtime_adopt(struct bk_runtime *rt, int ctl_fd, int in_fd, int out_fd);
int bk_runtime_open_slots(struct bk_runtime *rt, uint32_t nr_slots);
/* A view of @rt for slot @slot (< nr_slots): closing it is a no-op. */
void bk_runtime_slot(const struct bk_runtime *rt, uint32_t slot, struct bk_runtime *view);
void bk_runtime_close(struct bk_runtime *rt);
/* The format a shape program unpacks over the in map: its template into ctl. */
void bk_runtime_set_format(struct bk_runtime *rt, const struct bkey_format *f);

struct bk_loaded {
	int		fd;
	struct bkey_format f;		/* the program's format */
	enum bk_walk	walk;
	bool		by_shape;	/* f is one format of the shape it serves */
	unsigned	xlated_insns;
	unsigned	jited_bytes;
	unsigned	verified_insns;
	uint32_t	id;
};

/*
 * Loads @p with BTF func_info/line_info.  On failure returns a negative
 * errno and, if @log is given, the verifier log (retried with logging).
 */
int bk_prog_load(const struct bk_prog *p, struct bk_loaded *out, char *log, size_t log_len);

/*
 * Whether a failed load (-errno) is the verifier's verdict on the program
 * (which its log explains), not a failure of the load itself (ENOMEM,
 * EPERM, ...).
 */
static inline bool bk_is_verdict(int ret)
{
	return ret == -EINVAL || ret == -EACCES;
}

/*
 * A verifier's verdict on @p (@ret -EINVAL or -EACCES from bk_prog_load()):
 * "@who: the verifier rejected NAME (why):", its @log and our listing of
 * @p (map fds named by @names) to @out.  Other failures have no verdict and
 * print nothing: the caller's own line says why.  Returns whether it
 * printed.
 */
bool bk_report_reject(FILE *out, const char *who, const struct bk_prog *p, int ret,
		      const char *log, const struct bk_map_name *names, int nr_names);

/*
 * bk_prog_load() with a verifier log of its own: a rejection is reported
 * to @report (if not NULL) by bk_report_reject(); other failures are the
 * caller's to name.  Re-entrant.
 */
int bk_prog_load_report(const struct bk_prog *p, struct bk_loaded *out, FILE *report,
			const char *who, const struct bk_map_name *names, int nr_names);

struct btf;
/*
 * @p's BTF, being built: its functions' names and prototypes and its
 * source lines as strings, with fi[] (one per function) and li[] (one
 * per line) filled in.  NULL with *err on failure; the caller frees it.
 * bk_prog_load() loads it, bk_prog_write_obj() adds the maps and writes it.
 */
struct btf *bk_prog_btf(const struct bk_prog *p, struct bpf_func_info *fi,
			struct bpf_line_info *li, int *err);
/* The name of @p's function @i (0: the program, then its callbacks). */
void bk_subprog_name(const struct bk_prog *p, int i, char *buf, size_t len);
/* A libbpf BTF builder's result: an id or offset, or (<0) the first error kept in *err. */
int bk_btf_ok(int v, int *err);

/*
 * A map a generated program refers to: the placeholder fd its ld_imm64
 * carries, and the map an object file defines for it.
 */
struct bk_obj_map {
	int		fd;
	const char	*name;
	uint32_t	type, key_size, value_size, max_entries, flags;
};

/* The unpack runtime's three maps (gen/abi.h) for the placeholders given. */
void bk_runtime_obj_maps(struct bk_obj_map maps[3], int ctl_fd, int in_fd, int out_fd);

/*
 * Writes @p as a relocatable BPF ELF object, as clang emits one: the
 * program in section "socket", its maps as BTF-defined maps in ".maps"
 * with a relocation per reference, ".BTF" and ".BTF.ext" (func_info and
 * line_info: the listing's lines), license GPL.  Every map fd @p uses must
 * be one of @maps.  0 or -errno, with @err saying what went wrong.
 */
int bk_prog_write_obj(const struct bk_prog *p, const struct bk_obj_map *maps,
		      unsigned nr_maps, const char *path, char *err, size_t err_len);

/*
 * Kernel memory charged to this process's memory cgroup, in bytes (only
 * differences mean anything); *method names the counter read.
 */
long long bk_kernel_mem_bytes(const char **method);
/* The same, once the frees of objects closed before have landed (<= 0.5 s). */
long long bk_kernel_mem_settle(const char **method);
void bk_prog_unload(struct bk_loaded *l);

/*
 * Runs a program that walks by u64s over the words in[word_start,
 * word_end) into out[out_start...].  Returns 0 with the status, in_pos
 * (the word where the walk stopped) and out_pos in rt->ctl (a bad key's
 * status names its reason); -EINVAL for a table walk or indices out of
 * range (nothing runs); or -errno if the run itself failed.  @repeat > 1
 * runs it that many times; *duration_ns (may be NULL) gets the kernel's
 * mean duration per run.
 */
int bk_run_words(const struct bk_loaded *l, struct bk_runtime *rt, uint32_t word_start,
		 uint32_t word_end, uint32_t out_start, uint32_t repeat, uint32_t *duration_ns);

/*
 * The same for a program that walks the key table: keys [key_first,
 * key_end) of rt->tab (the words tab[key_first] up to tab[key_end]), key
 * i into out[i].  in_pos is still the word of the key where the walk
 * stopped, out_pos the key index.
 */
int bk_run_keys(const struct bk_loaded *l, struct bk_runtime *rt, uint32_t key_first,
		uint32_t key_end, uint32_t repeat, uint32_t *duration_ns);

/*
 * Copies @nr_words words of keys to the in map and unpacks them in one run
 * into rt->out[0..].  Returns 0 with the program's *status (BK_OK or
 * BK_ERR_*), *nr_keys and *stop_word from ctl (those two may be NULL), or
 * -errno if the run failed.
 */
int bk_unpack_words(const struct bk_loaded *l, struct bk_runtime *rt, const uint64_t *words,
		    uint32_t nr_words, uint32_t *status, uint32_t *nr_keys, uint32_t *stop_word);

/*
 * Runs a program generated over a nodes map (.node_size) over keys
 * [first, end) of node @node: out[first, end) gets them unpacked (key i to
 * out[i], as the table walk writes).  Returns 0 with the program's *status
 * (BK_OK or BK_ERR_*) and *nr_out keys written (may be NULL), or -errno.
 */
int bk_run_node(const struct bk_loaded *l, struct bk_runtime *rt, uint32_t node,
		uint32_t first, uint32_t end, uint32_t *status, uint32_t *nr_out,
		uint32_t repeat, uint32_t *duration_ns);

/*
 * Fills tab[0..] with the word offsets of the keys in words[0, nr_words)
 * that pass bkey_stream_check(), plus the word after the last of them.
 * Returns how many keys; *bad_word (may be NULL) gets the first bad key's
 * word, or nr_words.
 */
uint32_t bk_build_table(const struct bkey_format *f, const uint64_t *words, uint32_t nr_words,
			uint16_t *tab, uint32_t *bad_word);

#endif /* GEN_GEN_H */
