// SPDX-License-Identifier: GPL-2.0
/*
 * make bench: every unpack method over 1024-key nodes in one process,
 * in interleaved rounds, each checked against the reference first.
 *
 *   walk            the node walk alone (k += u64s)
 *   generic_c       bcachefs's portable streaming unpack (the model's)
 *   byte_aligned_c  upstream's 2026 byte-aligned fast path, where it applies
 *   x86_loop        emitted x86-64 loop (bench/x86.c, never in the product),
 *                   walking as bpf_generated does (its key table by default)
 *   x86_loop_u64s   the same emitted loop walking by u64s (bpf_u's walk)
 *   bpf_generic     one clang-compiled BPF program for all formats (bpf/)
 *   bpf_generated   our generated program, one run per node
 *   bpf_generated_u64s  the same program walking by u64s
 *   bpf_shape       the shape program (gen/abi.h): the same walk, made from
 *                   the format's widths alone, its offsets from a template
 *
 * Knobs for measuring alternatives (the defaults are the product's):
 * BK_BENCH_WALK=u64s times the bset walk instead of the key table,
 * BK_BENCH_CHUNK=N unrolls N keys per may_goto pass, BK_BENCH_IN_SHIFT=W
 * starts the node W words into the in map.  BK_BENCH_ONLY=combined runs
 * only the combined table (one program per shape for lookup and scan
 * against two, bench/combined.c); BK_BENCH_ONLY=floor only the search
 * floor (a plain BPF binary search and dependent loads against the same
 * in C, bench/floor.c), which comes last.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "bkey.h"
#include "combined.h"
#include "floor.h"
#include "gen.h"
#include "x86.h"
#include "demo.h"
#include "util.h"
#include "unpack_generic.h"
#include "unpack_generic.skel.h"

#define NODE_KEYS	1024
#define ROUNDS		15
#define TARGET_NS	10e6	/* each method's share of a round */
#define PREP_LOADS	200
#define MEM_PROGS	500

enum method {
	M_WALK, M_GENERIC_C, M_BYTE_ALIGNED_C, M_X86_LOOP, M_BPF_GENERIC, M_BPF_GENERATED,
	M_BPF_GENERATED_U64S,	/* the same program walking by u64s, for comparison */
	M_BPF_SHAPE,		/* the shape program of the same walk */
	M_X86_LOOP_U64S,	/* the x86 loop of the other walk: by u64s */
	NR_METHODS
};

static const char *const method_name[NR_METHODS] = {
	"walk", "generic_c", "byte_aligned_c", "x86_loop", "bpf_generic", "bpf_generated",
	"bpf_generated_u64s", "bpf_shape", "x86_loop_u64s",
};

/*
 * byte_aligned_c's constants, computed once per node: for each field the
 * byte offset of the 8-byte load that ends at the field's top byte, the
 * shift that brings the field down, a mask (0 for a zero-width field, so
 * only the offset is left) and the offset.
 */
struct ba_node {
	int8_t		off[BKEY_NR_FIELDS];
	uint8_t		sh[BKEY_NR_FIELDS];
	uint64_t	mask[BKEY_NR_FIELDS];
	uint64_t	add[BKEY_NR_FIELDS];
	uint32_t	hdr_add;	/* u64s += 5 - key_u64s, format 0 -> 1 */
};

static bool is_bpf(enum method m)
{
	return m >= M_BPF_GENERIC && m <= M_BPF_SHAPE;
}

struct bench_format {
	const char		*name;
	struct bkey_format	f;
	/* node: 8 bytes of padding first, for the byte-aligned path's reads */
	uint64_t		*buf, *words;
	uint32_t		nr_words;
	bool			byte_aligned;
	struct ba_node		ba;		/* byte_aligned_c's per-node constants */
	struct x86_fn		x86, x86_u64s;	/* the table walk's loop, the u64s walk's */
	uint16_t		*tab;		/* the node's key table, for the first */
	struct bk_prog		prog;
	struct bk_loaded	l, l_u64s, l_shape;	/* l_shape.fd < 0: n/a */
	/* results */
	double			ns[NR_METHODS];
	double			r_x86, r_generic, r_ba;		/* bpf_generated / method */
	double			r_x86_u64s;			/* bpf_u / x86_loop_u64s */
	double			r_shape;			/* bpf_shape / bpf_generated */
	double			x86_emit_us;	/* plan + emit + mmap + mprotect, median */
	double			node_load_us;	/* a node of a cached shape, median */
	double			prepare_us;
	double			mem_bytes;
	unsigned long		memlock;
};

/*
 * The constants of a byte-aligned format (every field ends on a byte: the
 * model's bkey_format_byte_aligned()); false for another format.
 */
static bool ba_node_init(const struct bkey_format *f, struct ba_node *c)
{
	struct bkey_byte_aligned ba;
	unsigned i;

	if (!bkey_format_byte_aligned(f, &ba))
		return false;
	for (i = 0; i < BKEY_NR_FIELDS; i++) {
		bool zero = ba.byte_offset[i] == BKEY_BA_SENTINEL;

		c->off[i] = zero ? 0 : ba.byte_offset[i];
		c->sh[i] = zero ? 0 : ba.shift[i];
		c->mask[i] = zero ? 0 : ~0ULL;
		c->add[i] = f->field_offset[i];
	}
	c->hdr_add = (BKEY_U64s - f->key_u64s) + (KEY_FORMAT_CURRENT << 8);
	return true;
}

static uint64_t seed = 0x5eedbe7c;
static volatile uint64_t sink;

static uint64_t rnd(void)
{
	return bk_rnd(&seed);
}

/* ---- nodes ---- */

static struct bkey key_of(const char *kind)
{
	struct bkey k = { .format_nw = KEY_FORMAT_CURRENT, .type = 6 };

	k.u64s = BKEY_U64s + rnd() % 5;
	if (!strcmp(kind, "extents1")) {
		k.inode = 4096;
		k.size = 1 + rnd() % 128;
		k.offset = 1271 + rnd() % (1 << 20);
		k.snapshot = UINT32_MAX;
	} else if (!strcmp(kind, "extents2") || !strcmp(kind, "extents2n")) {
		k.inode = 4096 + rnd() % 200;
		k.size = 1 + rnd() % 128;
		k.offset = 32803 + rnd() % (1 << 26);
		k.snapshot = UINT32_MAX;
	} else {	/* dirents */
		k.inode = 10006 + rnd() % 3000;
		k.offset = rnd();
		k.snapshot = UINT32_MAX;
		k.type = 8;
	}
	return k;
}

/* Random keys for an explicit format: every field in range. */
static struct bkey key_in(const struct bkey_format *f)
{
	uint64_t v[BKEY_NR_FIELDS];
	struct bkey k = { .format_nw = KEY_FORMAT_CURRENT, .type = 6 };
	unsigned i;

	for (i = 0; i < BKEY_NR_FIELDS; i++)
		v[i] = f->field_offset[i] + (rnd() & bkey_mask(f->bits_per_field[i]));
	k.u64s = BKEY_U64s + rnd() % 5;
	bkey_set_fields(&k, v);
	return k;
}

static int build(struct bench_format *bf, const char *kind, const struct bkey_format *explicit)
{
	struct bkey *keys = calloc(NODE_KEYS, sizeof(*keys));
	uint32_t pos = 0;
	unsigned i, j;

	if (!keys)
		return -ENOMEM;
	/* nothing loaded yet: the clean-up may run before anything is */
	bf->l.fd = bf->l_u64s.fd = bf->l_shape.fd = -1;
	bf->name = kind;
	if (explicit) {
		bf->f = *explicit;
		for (i = 0; i < NODE_KEYS; i++)
			keys[i] = key_in(&bf->f);
	} else {
		struct bkey_format_state s;

		bkey_format_init(&s);
		for (i = 0; i < NODE_KEYS; i++) {
			keys[i] = key_of(kind);
			bkey_format_add_key(&s, &keys[i]);
		}
		if (!strcmp(kind, "extents2n")) {
			bkey_format_add_pos(&s, (struct bpos){ 4096, 0, 0 });
			bkey_format_add_pos(&s, (struct bpos){ 4295, 1 << 26, UINT32_MAX });
		}
		bf->f = bkey_format_done(&s, BKEY_FORMAT_ERA_CURRENT);
	}
	bf->buf = calloc(1 + NODE_KEYS * (BKEY_U64s + 4) + 8, 8);
	if (!bf->buf) {
		free(keys);
		return -ENOMEM;
	}
	bf->words = bf->buf + 1;
	for (i = 0; i < NODE_KEYS; i++) {
		unsigned val = keys[i].u64s - BKEY_U64s, kw = bf->f.key_u64s;

		if (bkey_pack_key(&bf->f, &keys[i], bf->words + pos, NULL)) {
			fprintf(stderr, "bench: %s: a key does not pack\n", kind);
			free(keys);
			return -EINVAL;
		}
		for (j = 0; j < val; j++)
			bf->words[pos + kw + j] = rnd();
		pos += kw + val;
	}
	bf->nr_words = pos;
	/* the node's key table, as a loaded node carries one (x86_loop walks it) */
	bf->tab = calloc(NODE_KEYS + 1, sizeof(*bf->tab));
	if (!bf->tab || bk_build_table(&bf->f, bf->words, pos, bf->tab, NULL) != NODE_KEYS) {
		free(keys);
		return -EINVAL;
	}
	bf->byte_aligned = ba_node_init(&bf->f, &bf->ba);
	free(keys);
	return 0;
}

/* ---- the C methods ---- */

/* The floor: the node walk alone (k += u64s), nothing unpacked. */
static void walk(const struct bench_format *bf, struct bkey *out)
{
	const uint64_t *k = bf->words, *end = bf->words + bf->nr_words;
	uint64_t n = 0;

	while (k < end) {
		k += *(const uint8_t *)k;
		n++;
	}
	sink = n;
	(void)out;
}

/*
 * Stands for upstream's portable unpack, __bch2_bkey_unpack_key() with
 * its per-field loop over the packed words (bkey_unpack_stream() walks a
 * node with the model's copy of it).  It is what bcachefs runs for every
 * format the byte-aligned path does not take.
 */
static __attribute__((noinline)) void generic_c(const struct bench_format *bf, struct bkey *out)
{
	bkey_unpack_stream(&bf->f, bf->words, bf->nr_words, out);
}

static inline uint64_t ba_field(const uint8_t *k, const struct ba_node *c, unsigned i)
{
	uint64_t w;

	memcpy(&w, k + c->off[i], 8);
	return ((w >> c->sh[i]) & c->mask[i]) + c->add[i];
}

/*
 * Stands for upstream's byte-aligned unpack, __bch2_bkey_unpack_key_b()
 * (bcachefs's 2026 fast path for formats whose fields all end on a byte,
 * which replaced the x86 codegen): straight-line, one field after another
 * with constants precomputed per node, a zero-width field costing a load
 * and an add of its constant.  The header as upstream builds it (u64s
 * adjusted, format 1, needs_whiteout and type kept, pad 0), in one 32-bit
 * operation.  Differs from upstream: its constants come from the model's
 * byte-alignment test rather than the node's cached unpack state; keys
 * stored unpacked are copied here in the same loop; and it needs 8
 * readable bytes before a key (the bench's nodes have them).
 */
static __attribute__((noinline)) void byte_aligned_c(const struct bench_format *bf,
						     struct bkey *out)
{
	/* the node's constants in locals: stores to out cannot alias them,
	 * so they stay in registers across keys as upstream's per-node
	 * unpack state would */
	const struct ba_node cn = bf->ba, *c = &cn;
	const uint64_t *k = bf->words, *end = bf->words + bf->nr_words;

	for (; k < end; k += *(const uint8_t *)k, out++) {
		const uint8_t *kb = (const uint8_t *)k;
		uint32_t hdr;

		if (kb[1] & 0x7f) {
			memcpy(out, k, sizeof(*out));
			continue;
		}
		memcpy(&hdr, kb, 4);
		hdr = (hdr & 0xffffff) + c->hdr_add;
		memcpy(out, &hdr, 4);
		out->inode = ba_field(kb, c, BKEY_FIELD_INODE);
		out->offset = ba_field(kb, c, BKEY_FIELD_OFFSET);
		out->snapshot = ba_field(kb, c, BKEY_FIELD_SNAPSHOT);
		out->size = ba_field(kb, c, BKEY_FIELD_SIZE);
		out->version_hi = ba_field(kb, c, BKEY_FIELD_VERSION_HI);
		out->version_lo = ba_field(kb, c, BKEY_FIELD_VERSION_LO);
	}
}

/*
 * Stands for bcachefs's old bch2_compile_bkey_format(): x86-64 machine
 * code emitted per node format (bench/x86.c, from the same per-field plan
 * as ours), a loop over the node by u64s.  Differs: the loop is ours
 * (upstream emitted one call per key), and unpacked keys are copied in it.
 */
static void x86_loop_u64s(const struct bench_format *bf, struct bkey *out)
{
	bf->x86_u64s.run(bf->words, bf->words + bf->nr_words, out);
}

/* The same loop walking the node's key table, as the table walk does. */
static void x86_loop(const struct bench_format *bf, struct bkey *out)
{
	bf->x86.run_table(bf->tab, bf->tab + NODE_KEYS, out, bf->words);
}

/* ---- timing ---- */

static struct bk_runtime rt;
static struct unpack_generic_bpf *generic;

/* The generic program reads the format from .bss: fill it from the plan. */
static struct bk_loaded generic_for(const struct bench_format *bf)
{
	struct bk_loaded l = { .fd = bpf_program__fd(generic->progs.unpack_generic), .f = bf->f };
	struct bk_plan plan;
	unsigned i;

	bk_plan_format(&bf->f, &plan, NULL);
	generic->bss->fmt.key_u64s = plan.key_u64s;
	generic->bss->fmt.header_add = plan.header_add;
	for (i = 0; i < BKEY_NR_FIELDS; i++) {
		generic->bss->fmt.f[i].offset = plan.fp[i].offset;
		generic->bss->fmt.f[i].mask = bkey_mask(plan.fp[i].bits);
		generic->bss->fmt.f[i].word = plan.fp[i].word;
		generic->bss->fmt.f[i].sh = plan.fp[i].sh;
	}
	return l;
}
static unsigned in_shift;	/* where the node sits in the in map, words */
static enum method x86_same;	/* the x86 loop of bpf_generated's walk */

/* The BPF method's program; a shape program gets this format's template. */
static struct bk_loaded program_for(const struct bench_format *bf, enum method m)
{
	if (m == M_BPF_GENERIC)
		return generic_for(bf);
	if (m == M_BPF_SHAPE) {
		bk_runtime_set_format(&rt, &bf->f);
		return bf->l_shape;
	}
	return m == M_BPF_GENERATED_U64S ? bf->l_u64s : bf->l;
}

/* ns per key for @m, over about TARGET_NS. */
/* One run of a node in the in map: its words, or its key table's entries. */
static int run_node_keys(const struct bk_loaded *l, struct bk_runtime *rt, uint32_t start,
			 uint32_t end, uint32_t repeat, uint32_t *dur)
{
	if (l->walk == BK_WALK_TABLE)
		return bk_run_keys(l, rt, start, end, repeat, dur);
	return bk_run_words(l, rt, start, end, 0, repeat, dur);
}

static double time_method(struct bench_format *bf, enum method m, struct bkey *out)
{
	static void (*const c_fn[])(const struct bench_format *, struct bkey *) = {
		[M_WALK] = walk, [M_GENERIC_C] = generic_c,
		[M_BYTE_ALIGNED_C] = byte_aligned_c, [M_X86_LOOP] = x86_loop,
		[M_X86_LOOP_U64S] = x86_loop_u64s,
	};
	unsigned reps = 1, i;
	double t;

	if (is_bpf(m)) {
		struct bk_loaded gl = program_for(bf, m);
		const struct bk_loaded *l = &gl;
		uint32_t dur;

		uint32_t start = in_shift, end = in_shift + bf->nr_words;

		/* this node into the in map (with its key table when the program
		 * walks by table, as a loaded node carries one), a calibration
		 * run, a kernel-timed batch */
		memcpy(rt.in + in_shift, bf->words, 8 * (size_t)bf->nr_words);
		if (l->walk == BK_WALK_TABLE) {
			uint32_t i, pos = in_shift;

			for (i = 0; i < NODE_KEYS; i++) {
				rt.tab[i] = pos;
				pos += *(const uint8_t *)&rt.in[pos];
			}
			rt.tab[i] = pos;
			start = 0;
			end = NODE_KEYS;
		}
		run_node_keys(l, &rt, start, end, 1, &dur);
		reps = dur ? TARGET_NS / dur : 1000;
		if (run_node_keys(l, &rt, start, end, reps ? reps : 1, &dur) ||
		    rt.ctl->status != BK_OK || rt.ctl->out_pos != NODE_KEYS) {
			fprintf(stderr, "bench: %s: %s run failed: status %u, %u keys\n",
				bf->name, method_name[m], rt.ctl->status, rt.ctl->out_pos);
			exit(1);
		}
		return (double)dur / NODE_KEYS;
	}
	t = bk_now_ns();
	c_fn[m](bf, out);
	t = bk_now_ns() - t;
	reps = t > 0 ? TARGET_NS / t : 1000;
	if (!reps)
		reps = 1;
	t = bk_now_ns();
	for (i = 0; i < reps; i++)
		c_fn[m](bf, out);
	return (bk_now_ns() - t) / reps / NODE_KEYS;
}

/* Every method's output must equal the reference before it is timed. */
static int check_all(struct bench_format *bf, struct bkey *out, struct bkey *ref)
{
	enum method m;
	uint32_t n;
	uint32_t status;

	static void (*const c_fn[])(const struct bench_format *, struct bkey *) = {
		[M_BYTE_ALIGNED_C] = byte_aligned_c, [M_X86_LOOP] = x86_loop,
		[M_X86_LOOP_U64S] = x86_loop_u64s,
	};

	generic_c(bf, ref);
	for (m = 0; m < NR_METHODS; m++) {
		if (m >= sizeof(c_fn) / sizeof(c_fn[0]) || !c_fn[m] ||
		    (m == M_BYTE_ALIGNED_C && !bf->byte_aligned))
			continue;
		memset(out, 0xa5, NODE_KEYS * sizeof(*out));
		c_fn[m](bf, out);
		if (memcmp(out, ref, NODE_KEYS * sizeof(*out))) {
			fprintf(stderr, "bench: %s: %s differs from the reference\n", bf->name,
				method_name[m]);
			return -EINVAL;
		}
	}
	for (m = M_BPF_GENERIC; is_bpf(m); m++) {
		struct bk_loaded l = program_for(bf, m);

		if (m == M_BPF_SHAPE && bf->l_shape.fd < 0)
			continue;
		memset(rt.out, 0xa5, NODE_KEYS * sizeof(*out));
		int ret = bk_unpack_words(&l, &rt, bf->words, bf->nr_words, &status, &n, NULL);

		if (ret || status != BK_OK || n != NODE_KEYS ||
		    memcmp(rt.out, ref, NODE_KEYS * sizeof(*out))) {
			fprintf(stderr, "bench: %s: %s differs from the reference (%d, status %u)\n",
				bf->name, method_name[m], ret, status);
			return -EINVAL;
		}
	}
	return 0;
}

static double prepare_bk_median(struct bench_format *bf, const struct bk_gen_opts *o)
{
	double t[PREP_LOADS];
	unsigned i;

	for (i = 0; i < PREP_LOADS; i++) {
		struct bk_loaded l;
		double t0 = bk_now_ns();

		if (bk_gen_unpack(&bf->f, o, &bf->prog, NULL) ||
		    bk_prog_load(&bf->prog, &l, NULL, 0))
			return -1;
		t[i] = (bk_now_ns() - t0) / 1e3;
		bk_prog_unload(&l);
	}
	return bk_median(t, PREP_LOADS);
}

static unsigned long fdinfo_memlock(int fd)
{
	char path[64], line[256];
	unsigned long v = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = fopen(path, "r");
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "memlock:", 8))
			v = strtoul(line + 8, NULL, 10);
	if (f)
		fclose(f);
	return v;
}

static const char *mem_method = "?";

/* The x86 codegen's cost per format: plan, emit, mmap, mprotect (median). */
static double x86_emit_median(const struct bench_format *bf)
{
	double t[PREP_LOADS];
	unsigned i;

	for (i = 0; i < PREP_LOADS; i++) {
		double t0 = bk_now_ns();
		struct x86_fn fn;
		struct bk_plan plan;

		if (bk_plan_format(&bf->f, &plan, NULL) || x86_emit(&plan, false, &fn))
			return -1;
		t[i] = (bk_now_ns() - t0) / 1e3;
		x86_free(&fn);
	}
	return bk_median(t, PREP_LOADS);
}

/*
 * A node whose shape is cached, loaded into its slot as the node cache
 * does (median): header with the format, the template, the keys, and the
 * key table built and checked from them.  No program is made.
 */
static double node_load_median(const struct bench_format *bf)
{
	unsigned node_size = 8 * bf->nr_words, i;
	uint8_t *slot = calloc(1, bk_node_value_size(node_size));
	double t[PREP_LOADS];

	if (!slot)
		return -1;
	for (i = 0; i < PREP_LOADS; i++) {
		struct bk_node_hdr *h = (struct bk_node_hdr *)slot;
		double t0 = bk_now_ns();

		memset(h, 0, BK_NODE_WORDS_OFF);
		memcpy(h->format, &bf->f, sizeof(bf->f));
		bk_unpack_template(&bf->f, h->tmpl);
		memcpy(slot + BK_NODE_WORDS_OFF, bf->words, node_size);
		h->nr_keys = bk_build_table(&bf->f, bf->words, bf->nr_words,
					    (uint16_t *)(slot + bk_node_tab_off(node_size)), NULL);
		t[i] = (bk_now_ns() - t0) / 1e3;
		sink += h->nr_keys;
	}
	free(slot);
	return bk_median(t, PREP_LOADS);
}

/* Kernel memory per program: the growth while MEM_PROGS copies are loaded. */
static double memory_per_prog(struct bench_format *bf, const struct bk_gen_opts *o)
{
	static struct bk_loaded l[MEM_PROGS];
	long long before, after;
	unsigned i, n = 0;

	if (bk_gen_unpack(&bf->f, o, &bf->prog, NULL))
		return -1;
	/* programs closed earlier are freed after an RCU grace period */
	usleep(300 * 1000);
	before = bk_kernel_mem_bytes(&mem_method);
	for (i = 0; i < MEM_PROGS; i++, n++)
		if (bk_prog_load(&bf->prog, &l[i], NULL, 0))
			break;
	after = bk_kernel_mem_bytes(&mem_method);
	for (i = 0; i < n; i++)
		bk_prog_unload(&l[i]);
	return n ? (double)(after - before) / n : -1;
}

/*
 * The node search's loops, what each costs to verify: for a format, a
 * node size and search or lookup, the median prepare (generate + verify +
 * JIT) of SEARCH_LOADS loads, the instructions the verifier processed,
 * and the program's size.  Run time per lookup is the loader's to measure
 * (BKEY_SEARCH=, docs/design.md): it needs a tree.
 */
#define SEARCH_LOADS	40

#define SEARCH_MEM_PROGS	100

struct search_cost {
	double		prepare_us;
	double		mem_bytes;	/* kernel memory per program */
	struct bk_loaded l;
	bool		ok;
};

/* The growth of kernel memory while SEARCH_MEM_PROGS copies of @p are loaded. */
static double search_mem_per_prog(const struct bk_prog *p)
{
	static struct bk_loaded l[SEARCH_MEM_PROGS];
	long long before, after;
	unsigned i, n = 0;

	usleep(100 * 1000);	/* programs closed before: freed after a grace period */
	before = bk_kernel_mem_bytes(&mem_method);
	for (i = 0; i < SEARCH_MEM_PROGS; i++, n++)
		if (bk_prog_load(p, &l[i], NULL, 0))
			break;
	after = bk_kernel_mem_bytes(&mem_method);
	for (i = 0; i < n; i++)
		bk_prog_unload(&l[i]);
	return n ? (double)(after - before) / n : -1;
}

static struct search_cost search_cost(const struct bkey_format *f, unsigned node_size,
				      bool lookup, enum bk_search_loop loop,
				      const struct bk_lookup_rt *lr)
{
	static struct bk_prog p;
	struct search_cost c = { .l.fd = -1 };
	struct bk_search_opts o = {
		.node_size = node_size, .lookup = lookup, .by_shape = true, .loop = loop,
		.ctl_fd = lr->ctl_fd, .nodes_fd = lr->nodes_fd, .progs_fd = lr->progs_fd,
		.strict_align = bk_strict_align_default(),
	};
	double t[SEARCH_LOADS];
	unsigned i;

	for (i = 0; i < SEARCH_LOADS; i++) {
		double t0 = bk_now_ns();

		bk_prog_unload(&c.l);
		if (bk_gen_search(f, &o, &p, NULL) || bk_prog_load(&p, &c.l, NULL, 0))
			return c;
		t[i] = (bk_now_ns() - t0) / 1e3;
	}
	c.prepare_us = bk_median(t, SEARCH_LOADS);
	bk_prog_unload(&c.l);
	c.ok = true;
	c.mem_bytes = search_mem_per_prog(&p);
	return c;
}

static void search_loops(const struct bench_format *bfs, unsigned nb,
			 const struct bk_features *ft, FILE *json)
{
	static const unsigned node_sizes[] = { 4096, 65536 };
	static const enum bk_search_loop loops[] = {
		BK_SEARCH_MAY_GOTO, BK_SEARCH_UNROLLED, BK_SEARCH_BPF_LOOP,
	};
	unsigned i, n, k, l, rows = 0;

	printf("\n%-16s %6s %6s | %-9s %8s %9s %6s %5s %6s\n", "node search", "node", "kind",
	       "loop", "prep us", "verified", "xlated", "JIT", "mem B");
	for (n = 0; n < 2; n++) {
		struct bk_lookup_rt lr;

		if (bk_lookup_rt_open(&lr, node_sizes[n], 1, 1))
			continue;
		for (i = 0; i < nb; i += nb > 3 ? nb / 3 : 1)
			for (k = 0; k < 2; k++)
				for (l = 0; l < 3; l++) {
					struct search_cost c;

					if ((loops[l] == BK_SEARCH_MAY_GOTO && !ft->may_goto) ||
					    (loops[l] == BK_SEARCH_BPF_LOOP &&
					     (!ft->bpf_loop || (k && !ft->tail_call_subprog))))
						continue;
					c = search_cost(&bfs[i].f, node_sizes[n], k, loops[l], &lr);
					if (!c.ok) {
						printf("%-16s %6u %6s | %-9s refused by the verifier\n",
						       bfs[i].name, node_sizes[n], k ? "lookup" : "search",
						       bk_search_loop_name(loops[l]));
						continue;
					}
					printf("%-16s %6u %6s | %-9s %8.1f %9u %6u %5u %6.0f\n",
					       bfs[i].name, node_sizes[n], k ? "lookup" : "search",
					       bk_search_loop_name(loops[l]), c.prepare_us,
					       c.l.verified_insns, c.l.xlated_insns, c.l.jited_bytes,
					       c.mem_bytes);
					if (json)
						fprintf(json, "%s{\"format\":\"%s\",\"node_size\":%u,"
							"\"kind\":\"%s\",\"loop\":\"%s\",\"prepare_us\":%.1f,"
							"\"verified_insns\":%u,\"xlated_insns\":%u,"
							"\"jit_bytes\":%u,\"mem_bytes_per_prog\":%.0f}",
							rows++ ? "," : "", bfs[i].name,
							node_sizes[n], k ? "lookup" : "search",
							bk_search_loop_name(loops[l]), c.prepare_us,
							c.l.verified_insns, c.l.xlated_insns, c.l.jited_bytes,
							c.mem_bytes);
				}
		bk_lookup_rt_close(&lr);
	}
	printf("\nthe shape programs of the node search (search) and of a lookup's step\n"
	       "(lookup: the search, then the descent's tail call or the answer); prep =\n"
	       "generate + verify + JIT, median of %d loads; verified = instructions the\n"
	       "verifier processed; mem B = kernel memory per program (growth with %d\n"
	       "loaded).  Per-lookup time: BKEY_SEARCH=<loop> sudo ./loader.\n",
	       SEARCH_LOADS, SEARCH_MEM_PROGS);
}

/* One program per shape for lookup and scan against two: may_goto shapes. */
static int combined_table(const struct bench_format *bfs, unsigned nb,
			  const struct bk_features *ft, FILE *json)
{
	const char *names[16];
	struct bkey_format fmts[16];
	unsigned i;

	if (!ft->may_goto) {
		printf("\nlookup+scan in one program: measured where may_goto is (6.9+)\n");
		return 0;
	}
	for (i = 0; i < nb; i++) {
		names[i] = bfs[i].name;
		fmts[i] = bfs[i].f;
	}
	return combined_bench(names, fmts, nb, json);
}

/* BK_BENCH_ONLY=combined: that table alone, and its rows alone in @json_path. */
static int combined_only(const struct bench_format *bfs, unsigned nb,
			 const struct bk_features *ft, const char *json_path)
{
	FILE *json = fopen(json_path, "w");
	int ret;

	if (json)
		fprintf(json, "{\"combined\":[");
	ret = combined_table(bfs, nb, ft, json);
	if (json) {
		fprintf(json, "]}\n");
		fclose(json);
		printf("wrote %s\n", json_path);
	}
	return ret ? 1 : 0;
}

/* BK_BENCH_ONLY=floor: that table alone, and its rows alone in @json_path. */
static int floor_only(const char *json_path)
{
	FILE *json = fopen(json_path, "w");
	int ret;

	if (json)
		fprintf(json, "{\"floor\":[");
	ret = floor_table(json);
	if (json) {
		fprintf(json, "]}\n");
		fclose(json);
		printf("wrote %s\n", json_path);
	}
	return ret;
}

static void pin_cpu(void)
{
	cpu_set_t set;
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	CPU_ZERO(&set);
	CPU_SET(cpus > 1 ? 1 : 0, &set);
	sched_setaffinity(0, sizeof(set), &set);
}

int main(int argc, char **argv)
{
	static const struct bkey_format straddle = {
		.key_u64s = 4, .nr_fields = 6, .bits_per_field = { 13, 61, 17, 23, 11, 53 },
		.field_offset = { 4096, 1000, 0xfffe0000, 0, 5, 1ULL << 63 },
	};
	static struct bench_format bfs[16];
	struct bkey_format wf[8];
	const char *wnames[8];
	char wlabel[8][24];
	int nw;
	const char *json_path = argc > 1 ? argv[1] : "bench.json";
	struct bkey *out = calloc(NODE_KEYS, sizeof(*out)), *ref = calloc(NODE_KEYS, sizeof(*ref));
	struct bk_features ft;
	struct bk_gen_opts o = { .chunk = 1, .strict_align = bk_strict_align_default() };
	unsigned nb = 0, i, r;
	FILE *json;
	int ret;

	if (!getenv("BK_BENCH_LIBBPF_LOG"))
		libbpf_set_print(NULL);
	pin_cpu();
	if (getenv("BK_BENCH_ONLY") && !strcmp(getenv("BK_BENCH_ONLY"), "floor"))
		return floor_only(json_path);
	if (getenv("BK_BENCH_CHUNK"))
		o.chunk = atoi(getenv("BK_BENCH_CHUNK"));
	if (o.chunk < 1 || o.chunk > 8) {
		fprintf(stderr, "bench: BK_BENCH_CHUNK must be 1..8\n");
		return 2;
	}
	if (getenv("BK_BENCH_IN_SHIFT"))
		in_shift = atoi(getenv("BK_BENCH_IN_SHIFT"));
	ret = bk_probe_features(&ft);
	if (ret || (ret = bk_runtime_open(&rt))) {
		fprintf(stderr, "bench: needs root and bpf(): %s\n", strerror(-ret));
		return 1;
	}
	generic = unpack_generic_bpf__open();
	if (!generic || bpf_map__reuse_fd(generic->maps.bk_ctl, rt.ctl_fd) ||
	    bpf_map__reuse_fd(generic->maps.bk_in, rt.in_fd) ||
	    bpf_map__reuse_fd(generic->maps.bk_out, rt.out_fd) || unpack_generic_bpf__load(generic)) {
		fprintf(stderr, "bench: cannot load the generic BPF program\n");
		return 1;
	}
	o.shape = ft.best;
	/* BK_BENCH_WALK=u64s measures the bset walk instead of the table */
	o.walk = ft.may_goto && !(getenv("BK_BENCH_WALK") && !strcmp(getenv("BK_BENCH_WALK"), "u64s")) ?
		 BK_WALK_TABLE : BK_WALK_U64S;
	o.ctl_fd = rt.ctl_fd;
	o.in_fd = rt.in_fd;
	o.out_fd = rt.out_fd;
	/* the headline ratio divides by the x86 loop of bpf_generated's walk */
	x86_same = o.walk == BK_WALK_TABLE ? M_X86_LOOP : M_X86_LOOP_U64S;

	if (build(&bfs[nb++], "extents1", NULL) || build(&bfs[nb++], "extents2", NULL) ||
	    build(&bfs[nb++], "extents2n", NULL) || build(&bfs[nb++], "dirents", NULL) ||
	    build(&bfs[nb++], "current", &bkey_format_current) ||
	    build(&bfs[nb++], "straddle", &straddle))
		return 1;
	/* the default run's node formats, with random keys in range */
	nw = demo_formats(wf, wnames, 8);
	for (i = 0; nw > 0 && i < (unsigned)nw; i++) {
		if (!strcmp(wnames[i], "current"))
			continue;	/* already above */
		snprintf(wlabel[i], sizeof(wlabel[i]), "w:%s", wnames[i]);
		if (build(&bfs[nb++], wlabel[i], &wf[i]))
			return 1;
	}
	if (getenv("BK_BENCH_ONLY") && !strcmp(getenv("BK_BENCH_ONLY"), "combined")) {
		ret = combined_only(bfs, nb, &ft, json_path);
		goto cleanup;
	}

	for (i = 0; i < nb; i++) {
		struct bench_format *bf = &bfs[i];
		struct bk_plan plan;

		if (bk_plan_format(&bf->f, &plan, NULL) || x86_emit(&plan, true, &bf->x86) ||
		    x86_emit(&plan, false, &bf->x86_u64s))
			return 1;
		bf->prepare_us = prepare_bk_median(bf, &o);
		bf->mem_bytes = memory_per_prog(bf, &o);
		if (bk_gen_unpack(&bf->f, &o, &bf->prog, NULL) ||
		    bk_prog_load(&bf->prog, &bf->l, NULL, 0))
			return 1;
		bf->memlock = fdinfo_memlock(bf->l.fd);
		bf->x86_emit_us = x86_emit_median(bf);
		bf->node_load_us = node_load_median(bf);
		bf->l_shape.fd = -1;
		if (o.walk == BK_WALK_TABLE) {
			/* made from another format of the shape: offsets 0 */
			struct bkey_format twin = bf->f;
			struct bk_gen_opts os = o;

			memset(twin.field_offset, 0, sizeof(twin.field_offset));
			os.by_shape = true;
			if (bk_gen_unpack(&twin, &os, &bf->prog, NULL) ||
			    bk_prog_load(&bf->prog, &bf->l_shape, NULL, 0))
				return 1;
		}
		{
			struct bk_gen_opts ou = o;

			ou.walk = BK_WALK_U64S;
			if (bk_gen_unpack(&bf->f, &ou, &bf->prog, NULL) ||
			    bk_prog_load(&bf->prog, &bf->l_u64s, NULL, 0))
				return 1;
			/* the listing, names and sizes reported are the default walk's */
			if (bk_gen_unpack(&bf->f, &o, &bf->prog, NULL))
				return 1;
		}
		if (check_all(bf, out, ref))
			return 1;
	}

	printf("shape %s, walk by %s (%s), %u-key nodes, %d interleaved rounds, medians\n",
	       bk_shape_name(ft.best), bk_walk_name(o.walk), ft.why, NODE_KEYS, ROUNDS);
	for (i = 0; i < nb; i++) {
		struct bench_format *bf = &bfs[i];
		double ns[NR_METHODS][ROUNDS], rx[ROUNDS], rg[ROUNDS], rb[ROUNDS], rs[ROUNDS];
		double ru[ROUNDS];
		enum method m;

		for (r = 0; r < ROUNDS; r++) {
			for (m = 0; m < NR_METHODS; m++) {
				enum method mm = (m + r) % NR_METHODS;	/* rotate the order */

				ns[mm][r] = (mm == M_BYTE_ALIGNED_C && !bf->byte_aligned) ||
					    (mm == M_BPF_SHAPE && bf->l_shape.fd < 0) ? 0 :
					    time_method(bf, mm, out);
			}
			/* same walk against same walk */
			rx[r] = ns[M_BPF_GENERATED][r] / ns[x86_same][r];
			ru[r] = ns[M_BPF_GENERATED_U64S][r] / ns[M_X86_LOOP_U64S][r];
			rg[r] = ns[M_BPF_GENERATED][r] / ns[M_GENERIC_C][r];
			rb[r] = bf->byte_aligned ? ns[M_BPF_GENERATED][r] / ns[M_BYTE_ALIGNED_C][r] : 0;
			rs[r] = ns[M_BPF_SHAPE][r] / ns[M_BPF_GENERATED][r];
		}
		for (m = 0; m < NR_METHODS; m++)
			bf->ns[m] = bk_median(ns[m], ROUNDS);
		bf->r_x86 = bk_median(rx, ROUNDS);
		bf->r_x86_u64s = bk_median(ru, ROUNDS);
		bf->r_generic = bk_median(rg, ROUNDS);
		bf->r_ba = bk_median(rb, ROUNDS);
		bf->r_shape = bk_median(rs, ROUNDS);
	}

	printf("\n%-16s %5s %9s %7s %5s %5s %7s %5s %5s %5s | %5s %5s %5s %6s %5s | %7s %6s %4s %5s %6s %7s\n",
	       "format", "walk", "generic_c", "byte_al", "x86", "x86_u", "bpf_gen", "bpf", "bpf_u",
	       "bpf_s", "/x86", "/gen", "/ba", "u/x86u", "s/bpf", "prep us", "xlated", "JIT",
	       "x86 B", "mem B", "memlock");
	for (i = 0; i < nb; i++) {
		struct bench_format *bf = &bfs[i];
		char ba[16], rba[16];

		snprintf(ba, sizeof(ba), bf->byte_aligned ? "%.2f" : "n/a", bf->ns[M_BYTE_ALIGNED_C]);
		snprintf(rba, sizeof(rba), bf->byte_aligned ? "%.2f" : "n/a", bf->r_ba);
		printf("%-16s %5.2f %9.2f %7s %5.2f %5.2f %7.2f %5.2f %5.2f %5.2f | %5.2f %5.2f %5s %6.2f %5.2f | %7.1f %6u %4u %5zu %6.0f %7lu\n",
		       bf->name, bf->ns[M_WALK], bf->ns[M_GENERIC_C], ba, bf->ns[M_X86_LOOP],
		       bf->ns[M_X86_LOOP_U64S], bf->ns[M_BPF_GENERIC], bf->ns[M_BPF_GENERATED],
		       bf->ns[M_BPF_GENERATED_U64S], bf->ns[M_BPF_SHAPE], bf->r_x86, bf->r_generic,
		       rba, bf->r_x86_u64s, bf->r_shape, bf->prepare_us, bf->l.xlated_insns,
		       bf->l.jited_bytes, x86_same == M_X86_LOOP ? bf->x86.len : bf->x86_u64s.len,
		       bf->mem_bytes, bf->memlock);
	}
	printf("\nns/key (x86 = the emitted x86 loop walking the node's key table, x86_u = it\n"
	       "walking by u64s; bpf_gen = bpf_generic, bpf = bpf_generated walking by %s,\n"
	       "bpf_u = the same program walking by u64s, bpf_s = the shape program of bpf's\n"
	       "walk); ratios: /x86 = bpf over the x86 loop of the same walk, /gen and /ba =\n"
	       "bpf over generic_c and byte_aligned_c, u/x86u = bpf_u over x86_u (the u64s\n"
	       "walk against itself), s/bpf = bpf_shape over bpf_generated; x86 B = the same\n"
	       "walk's x86 loop,\n"
	       "medians of per-round ratios. prep = generate + verify + JIT, median of %d\n"
	       "loads. mem B = kernel memory per program (%s, growth\n"
	       "with %d loaded: program, BTF, JIT image); memlock = the program's fdinfo memlock.\n",
	       bk_walk_name(o.walk), PREP_LOADS, mem_method, MEM_PROGS);

	printf("\n%-16s %8s %8s %8s %10s %6s\n", "per node", "node us", "x86 us", "node/x86",
	       "shape JIT", "xlated");
	for (i = 0; i < nb; i++) {
		struct bench_format *bf = &bfs[i];

		printf("%-16s %8.2f %8.2f %8.2f %10u %6u\n", bf->name, bf->node_load_us,
		       bf->x86_emit_us, bf->node_load_us / bf->x86_emit_us, bf->l_shape.jited_bytes,
		       bf->l_shape.xlated_insns);
	}
	printf("\nnode us: a node (these 1024 keys) whose shape is cached, loaded into a\n"
	       "node slot: header, template, keys, and the key table built and checked;\n"
	       "x86 us: the x86 emitter's cost per format (plan, emit, mmap, mprotect), which\n"
	       "bcachefs paid per node; medians of %d. shape JIT, xlated: the shape program.\n",
	       PREP_LOADS);

	json = fopen(json_path, "w");
	if (json) {
		fprintf(json, "{\"shape\":\"%s\",\"walk\":\"%s\",\"node_keys\":%d,\"rounds\":%d,"
			"\"memory_method\":\"%s\",\"formats\":[",
			bk_shape_name(ft.best), bk_walk_name(o.walk), NODE_KEYS, ROUNDS, mem_method);
		for (i = 0; i < nb; i++) {
			struct bench_format *bf = &bfs[i];
			char fs[200];
			enum method m;

			bkey_format_to_str(&bf->f, fs, sizeof(fs));
			fprintf(json, "%s{\"name\":\"%s\",\"format\":\"%s\",\"ns_per_key\":{", i ? "," : "",
				bf->name, fs);
			for (m = 0; m < NR_METHODS; m++) {
				if (m == M_BYTE_ALIGNED_C && !bf->byte_aligned)
					fprintf(json, "%s\"%s\":null", m ? "," : "", method_name[m]);
				else
					fprintf(json, "%s\"%s\":%.3f", m ? "," : "", method_name[m], bf->ns[m]);
			}
			fprintf(json, "},\"ratio_vs_x86_loop_same_walk\":%.3f,"
				"\"ratio_u64s_vs_x86_loop_u64s\":%.3f,\"ratio_vs_generic_c\":%.3f,"
				"\"ratio_vs_byte_aligned_c\":%s%.3f,\"prepare_us\":%.2f,\"jit_bytes\":%u,"
				"\"x86_bytes\":%zu,\"xlated_insns\":%u,\"mem_bytes_per_prog\":%.0f,"
				"\"memlock\":%lu,\"ratio_shape_vs_exact\":%.3f,\"shape_jit_bytes\":%u,"
				"\"shape_xlated_insns\":%u,\"node_load_us\":%.3f,\"x86_emit_us\":%.3f}",
				bf->r_x86, bf->r_x86_u64s, bf->r_generic, "",
				bf->byte_aligned ? bf->r_ba : 0.0, bf->prepare_us, bf->l.jited_bytes,
				x86_same == M_X86_LOOP ? bf->x86.len : bf->x86_u64s.len,
				bf->l.xlated_insns, bf->mem_bytes, bf->memlock,
				bf->r_shape, bf->l_shape.jited_bytes, bf->l_shape.xlated_insns,
				bf->node_load_us, bf->x86_emit_us);
		}
		fprintf(json, "],\"search_loops\":[");
	}
	search_loops(bfs, nb, &ft, json);
	if (json)
		fprintf(json, "],\"combined\":[");
	if (combined_table(bfs, nb, &ft, json))
		ret = 1;
	if (json)
		fprintf(json, "],\"floor\":[");
	if (floor_table(json))
		ret = 1;
	if (json) {
		fprintf(json, "]}\n");
		fclose(json);
		printf("wrote %s\n", json_path);
	}
	/* ns/key per method, one row per format, for bench/plot.gp */
	{
		char dat[512];
		FILE *d;

		snprintf(dat, sizeof(dat), "%s.dat", json_path);
		d = fopen(dat, "w");
		for (i = 0; d && i < nb; i++) {
			enum method m;

			fprintf(d, "%s", bfs[i].name);
			for (m = 0; m < NR_METHODS; m++)
				fprintf(d, " %.3f", m == M_BYTE_ALIGNED_C && !bfs[i].byte_aligned ?
					0.0 : bfs[i].ns[m]);
			fprintf(d, "\n");
		}
		if (d)
			fclose(d);
	}
cleanup:
	for (i = 0; i < nb; i++) {
		bk_prog_unload(&bfs[i].l);
		bk_prog_unload(&bfs[i].l_u64s);
		bk_prog_unload(&bfs[i].l_shape);
		x86_free(&bfs[i].x86);
		x86_free(&bfs[i].x86_u64s);
		free(bfs[i].tab);
		free(bfs[i].buf);
	}
	unpack_generic_bpf__destroy(generic);
	bk_runtime_close(&rt);
	free(out);
	free(ref);
	return ret;
}
