// SPDX-License-Identifier: GPL-2.0
/*
 * Kernel-facing behaviour beyond exactness: BTF line_info as bpftool shows
 * it, program names, error statuses for malformed runs, and sizes.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test_progs.h"
#include "examples.h"
#include "kenv.h"
#include "util.h"

static int load_walk(struct kenv *k, const struct bkey_format *f, enum bk_shape shape,
		     enum bk_walk walk, struct bk_prog *p, struct bk_loaded *l)
{
	struct bk_gen_opts o = {
		.shape = shape, .walk = walk, .chunk = 1,
		.ctl_fd = k->rt.ctl_fd, .in_fd = k->rt.in_fd, .out_fd = k->rt.out_fd,
		.strict_align = bk_strict_align_default(),
	};
	static char log[1 << 16];
	int ret = bk_gen_unpack(f, &o, p, NULL);

	if (!ret)
		ret = bk_prog_load(p, l, log, sizeof(log));
	if (ret)
		fprintf(stderr, "%s\n", log);
	return ret;
}

static int load_format(struct kenv *k, const struct bkey_format *f, enum bk_shape shape,
		       struct bk_prog *p, struct bk_loaded *l)
{
	return load_walk(k, f, shape, BK_WALK_U64S, p, l);
}

/* Reads a command's whole output; NULL if it could not run. */
static void linum_lines(struct kenv *k)
{
	static struct bk_prog p;
	struct bkey_format f = ex3_format();
	struct bk_loaded l;
	char cmd[128], line[160], *out;

	if (!ASSERT_OK(load_format(k, &f, k->ft.best, &p, &l), "load"))
		return;
	snprintf(cmd, sizeof(cmd), "bpftool prog dump xlated id %u linum 2>/dev/null", l.id);
	out = run_cmd(cmd);
	if (!out) {
		test__skip("bpftool not available");
		bk_prog_unload(&l);
		return;
	}
	if (env_verbose)
		printf("%s", out);
	/* each field's line, with its word bits and offset, and the file name */
	bk_field_line(&p.plan.fp[BKEY_FIELD_INODE], line, sizeof(line));
	ASSERT_HAS_SUBSTR(out, line, "inode line");
	ASSERT_HAS_SUBSTR(out, "inode: K[88..127] = w1[24..63] (40 bits) + offset 0x100000000", "inode text");
	ASSERT_HAS_SUBSTR(out, "offset: K[48..87] = w0[48..63] | w1[0..23] (40 bits)", "straddle text");
	ASSERT_HAS_SUBSTR(out, "snapshot: 0 bits, constant offset 0xffffffff", "constant text");
	ASSERT_HAS_SUBSTR(out, p.file_name, "file name");
	free(out);

	/* bpftool shows the BTF name, which carries the widths */
	snprintf(cmd, sizeof(cmd), "bpftool prog show id %u 2>/dev/null", l.id);
	out = run_cmd(cmd);
	if (ASSERT_TRUE(out, "bpftool prog show"))
		ASSERT_HAS_SUBSTR(out, p.func_name, "func name shown");
	free(out);
	bk_prog_unload(&l);
}

static void names(void)
{
	struct bkey_format a = ex3_format(), b = ex3_format();
	char n1[16], n2[16], f1[64], f2[64];

	bk_prog_names(&a, n1, f1);
	bk_prog_names(&b, n2, f2);
	ASSERT_STREQ(n1, n2, "stable");
	ASSERT_EQ(strlen(n1), 15, "15 characters");
	ASSERT_STREQ(n1, "bk2_b703712439a", "name of example 3's format");
	ASSERT_STREQ(f1, "bk2_b40_40_0_12_0_0_b703712439a", "BTF name");
	b.field_offset[0]++;
	bk_prog_names(&b, n2, f2);
	ASSERT_NEQ(strcmp(n1, n2), 0, "another offset, another name");
}

/*
 * The bad key at word 6 of a run of @len words breaks rule @status and no
 * other (spec 11's key checks: u64s not 0, inside the run, covering the
 * key's words, a format byte of 0 or 1, a value of at most 250 words).
 */
static void own_reason_only(const struct bkey_format *f, unsigned u64s, unsigned format,
			    unsigned len, int status, const char *name)
{
	unsigned kw = (format & 0x7f) == KEY_FORMAT_CURRENT ? BKEY_U64s : f->key_u64s;
	bool fmt_ok = (format & 0x7f) <= KEY_FORMAT_CURRENT;

	if (status != BK_ERR_U64S_ZERO)
		_CHECK(u64s, name, "u64s 0 too");
	if (status != BK_ERR_PAST_END)
		_CHECK(6 + u64s <= len, name, "runs past the end too");
	if (status != BK_ERR_BAD_FORMAT)
		_CHECK(fmt_ok, name, "a bad format byte too");
	if (status != BK_ERR_SHORT_KEY && status != BK_ERR_U64S_ZERO && fmt_ok)
		_CHECK(u64s >= kw, name, "shorter than its key too");
	if (status != BK_ERR_VAL_TOO_BIG && fmt_ok && u64s >= kw)
		_CHECK(u64s - kw <= BKEY_VAL_U64s_MAX, name, "a value too big too");
}

/*
 * A run with one bad key: the status names the reason and the key.  Each
 * case breaks one rule alone (own_reason_only()), so the status says which
 * check stopped it; a key at each bound passes.
 */
static void bad_runs(struct kenv *k)
{
	static struct bk_prog p;
	struct bkey_format f = ex2_format();	/* key_u64s 2 */
	struct bkey key = ex_key(0x1000, 0x20, 0xffffffff, 8, 0, 0, 6, 6);
	struct {
		const char	*name;
		int		u64s, format;
		uint32_t	len;		/* words in the run */
		int		status;
	} cases[] = {
		{ "u64s_zero", 0, 0, 8, BK_ERR_U64S_ZERO },
		{ "past_end", 7, 0, 8, BK_ERR_PAST_END },
		{ "past_end_unpacked", 5, 1, 8, BK_ERR_PAST_END },
		{ "short_packed", 1, 0, 8, BK_ERR_SHORT_KEY },
		{ "short_unpacked", 4, 1, 10, BK_ERR_SHORT_KEY },
		{ "bad_format", 3, 2, 9, BK_ERR_BAD_FORMAT },
		{ "bad_format_nw", 3, 0x82, 9, BK_ERR_BAD_FORMAT },
		{ "val_too_big_packed", 253, 0, 259, BK_ERR_VAL_TOO_BIG },
		/* at the bounds: a value of 250 words, a key that ends the run */
		{ "val_250_packed", 252, 0, 258, BK_OK },
		{ "val_250_unpacked", 255, 1, 261, BK_OK },
		{ "ends_the_run", 3, 0, 9, BK_OK },
	};
	uint64_t words[300];
	struct bk_loaded l;
	unsigned i, s;
	enum bk_shape sh[2] = { BK_SHAPE_MAY_GOTO, BK_SHAPE_BPF_LOOP };

	for (s = 0; s < 2; s++) {
		if (!kenv_has_shape(k, sh[s]))
			continue;
		if (!ASSERT_OK(load_format(k, &f, sh[s], &p, &l), "load"))
			return;
		for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
			uint32_t nr_keys, stop, status = ~0u;
			unsigned kw;
			int ref;

			memset(words, 0, sizeof(words));
			/* two good keys (2 + 1 words each), then the bad one at word 6 */
			bkey_pack_key(&f, &key, words, NULL);
			words[2] = 0x77;
			memcpy(&words[3], &words[0], 24);
			((uint8_t *)&words[6])[0] = cases[i].u64s;
			((uint8_t *)&words[6])[1] = cases[i].format;
			own_reason_only(&f, cases[i].u64s, cases[i].format, cases[i].len,
					cases[i].status, cases[i].name);
			ASSERT_OK(bk_unpack_words(&l, &k->rt, words, cases[i].len, &status, &nr_keys,
						  &stop), "run");
			ASSERT_EQ(status, (uint32_t)cases[i].status, cases[i].name);
			ref = bkey_stream_check(&f, words, cases[i].len, 6, &kw);
			ASSERT_EQ(ref, cases[i].status, "the reference gives the same reason");
			if (cases[i].status == BK_OK) {
				ASSERT_EQ(stop, cases[i].len, "the whole run walked");
				ASSERT_EQ(nr_keys, 3, "the key at the bound unpacked too");
				continue;
			}
			ASSERT_EQ(stop, 6, "in_pos names the bad key");
			ASSERT_EQ(nr_keys, 2, "keys before it were unpacked");
		}
		/* an empty run and bad arguments */
		{
			uint32_t status = ~0u;

			ASSERT_OK(bk_unpack_words(&l, &k->rt, words, 0, &status, NULL, NULL),
				  "empty run");
			ASSERT_EQ(status, BK_OK, "empty run's status");
		}
		ASSERT_EQ(bk_run_words(&l, &k->rt, 5, 4, 0, 1, NULL), -EINVAL, "start > end");
		ASSERT_EQ(bk_run_words(&l, &k->rt, 0, BK_IN_CAP_WORDS + 1, 0, 1, NULL), -EINVAL,
			  "in_end past the map");
		ASSERT_EQ(bk_run_words(&l, &k->rt, 0, 0, BK_OUT_CAP_KEYS + 1, 1, NULL), -EINVAL,
			  "out_start past the map");
		/* the output area running out is the program's to report */
		memset(words, 0, sizeof(words));
		bkey_pack_key(&f, &key, words, NULL);
		ASSERT_OK(bk_run_words(&l, &k->rt, 0, 3, BK_OUT_CAP_KEYS, 1, NULL), "run");
		ASSERT_EQ(bk_run_keys(&l, &k->rt, 0, 1, 1, NULL), -EINVAL,
			  "a walk by u64s run by keys: refused");
		ASSERT_EQ(k->rt.ctl->status, BK_ERR_OUT_FULL, "output full");
		ASSERT_EQ(k->rt.ctl->out_pos, BK_OUT_CAP_KEYS, "nothing written");
		bk_prog_unload(&l);
	}
}

/*
 * The table walk over a node whose keys or table went bad in the map:
 * the program stops at that key, and the reason is named as the u64s walk
 * names it; a table that disagrees with good keys is a bad key too.
 */
static void bad_tables_in(struct kenv *k, enum bk_shape shape)
{
	static struct bk_prog p;
	static uint64_t words[4096];
	struct bkey_format f = ex2_format();
	uint64_t seed = 0x5eed0302;
	struct bk_loaded l;
	unsigned nr_keys, victim;
	uint32_t n, keys;

	if (!ASSERT_OK(load_walk(k, &f, shape, BK_WALK_TABLE, &p, &l), "load"))
		return;
	n = rnd_stream(&seed, &f, 200, words, 4096, &nr_keys);

	memcpy(k->rt.in, words, 8 * n);
	keys = bk_build_table(&f, k->rt.in, n, k->rt.tab, NULL);
	ASSERT_EQ(keys, nr_keys, "table covers every key");

	/* key i goes to out[i]: a run from key 5 writes what a whole run does */
	{
		static struct bkey whole[200];

		ASSERT_OK(bk_run_keys(&l, &k->rt, 0, keys, 1, NULL), "whole run");
		memcpy(whole, k->rt.out, sizeof(whole[0]) * keys);
		memset(k->rt.out, 0xa5, sizeof(whole[0]) * keys);
		ASSERT_OK(bk_run_keys(&l, &k->rt, 5, keys, 1, NULL), "run from key 5");
		ASSERT_EQ(k->rt.ctl->status, BK_OK, "status");
		ASSERT_EQ(k->rt.ctl->out_pos, keys, "out_pos past the last key");
		ASSERT_MEMEQ(&k->rt.out[5], &whole[5], sizeof(whole[0]) * (keys - 5), "keys 5..");
		ASSERT_EQ(bk_run_words(&l, &k->rt, 0, keys, 0, 1, NULL), -EINVAL,
			  "a table walk run by words: refused");
	}

	/* a table entry off by one word: key 10 no longer matches it */
	k->rt.tab[11]++;
	ASSERT_OK(bk_run_keys(&l, &k->rt, 0, keys, 1, NULL), "run");
	ASSERT_EQ(k->rt.ctl->status, BK_ERR_BAD_KEY, "table disagrees with key 10");
	ASSERT_EQ(k->rt.ctl->out_pos, 10, "ten keys before it");
	ASSERT_EQ(k->rt.ctl->in_pos, k->rt.tab[10], "in_pos is key 10's word");

	/*
	 * Keys corrupted after the table was built, as in a node image.  The
	 * last three also set the table's gap to 256 + u64s: the program
	 * compares the header's u64s and format bits (15 bits) with the gap
	 * in one test, so such a gap must not pass for a format byte of 1 or
	 * 2, nor for a good unpacked key (the table disagrees with it).
	 */
	for (victim = 0; victim < 7; victim++) {
		static const struct { uint8_t u64s, fmt; bool gap256; unsigned status; } bad[] = {
			{ 0, 0, false, BK_ERR_U64S_ZERO }, { 1, 0, false, BK_ERR_SHORT_KEY },
			{ 3, 2, false, BK_ERR_BAD_FORMAT }, { 3, 0x85, false, BK_ERR_BAD_FORMAT },
			{ 3, 1, true, BK_ERR_SHORT_KEY }, { 3, 2, true, BK_ERR_BAD_FORMAT },
			{ 5, 1, true, BK_ERR_BAD_KEY },
		};
		uint8_t *h;

		memcpy(k->rt.in, words, 8 * n);
		bk_build_table(&f, k->rt.in, n, k->rt.tab, NULL);
		h = (uint8_t *)&k->rt.in[k->rt.tab[20]];
		h[0] = bad[victim].u64s;
		h[1] = bad[victim].fmt;
		if (bad[victim].gap256)
			k->rt.tab[21] = k->rt.tab[20] + 0x100 + bad[victim].u64s;
		ASSERT_OK(bk_run_keys(&l, &k->rt, 0, bad[victim].gap256 ? 21 : keys, 1, NULL), "run");
		ASSERT_EQ(k->rt.ctl->status, bad[victim].status, "reason");
		ASSERT_EQ(k->rt.ctl->out_pos, 20, "twenty keys before it");
	}
	bk_prog_unload(&l);
}

/* The table walk in each shape the kernel has: one may_goto loop, or bpf_loop callbacks. */
static void bad_tables(struct kenv *k)
{
	if (k->ft.may_goto)
		bad_tables_in(k, BK_SHAPE_MAY_GOTO);
	if (k->ft.bpf_loop)
		bad_tables_in(k, BK_SHAPE_BPF_LOOP);
}

/* A run repeated (test_run's repeat) gives what one run gives. */
static void repeat_runs(struct kenv *k)
{
	static struct bk_prog p;
	static uint64_t words[4096];
	static struct bkey once[1024];
	struct bkey_format f = ex3_format();
	uint64_t seed = 0x5eed0301;
	struct bk_loaded l;
	unsigned nr_keys, s;
	uint32_t n = rnd_stream(&seed, &f, 500, words, 4096, &nr_keys);
	enum bk_shape sh[2] = { BK_SHAPE_MAY_GOTO, BK_SHAPE_BPF_LOOP };

	for (s = 0; s < 2; s++) {
		uint32_t keys1, pos1, status = ~0u;

		if (!kenv_has_shape(k, sh[s]))
			continue;
		if (!ASSERT_OK(load_format(k, &f, sh[s], &p, &l), "load"))
			return;
		ASSERT_OK(bk_unpack_words(&l, &k->rt, words, n, &status, &keys1, &pos1), "one run");
		ASSERT_EQ(status, BK_OK, "one run's status");
		memcpy(once, k->rt.out, sizeof(once));
		memset(k->rt.out, 0, sizeof(once));
		ASSERT_OK(bk_run_words(&l, &k->rt, 0, n, 0, 7, NULL), "7 runs");
		/* a program that wrote its arguments would make runs 2..7 differ */
		ASSERT_EQ(k->rt.ctl->arg_in, 0, "arg_in untouched");
		ASSERT_EQ(k->rt.ctl->arg_end, 8 * n, "arg_end untouched");
		ASSERT_EQ(k->rt.ctl->arg_out, 0, "arg_out untouched");
		ASSERT_EQ(k->rt.ctl->status, BK_OK, "status");
		ASSERT_EQ(k->rt.ctl->out_pos, keys1, "same keys");
		ASSERT_EQ(k->rt.ctl->in_pos, pos1, "same stop");
		ASSERT_MEMEQ(k->rt.out, once, sizeof(struct bkey) * keys1, "same output");
		ASSERT_EQ(keys1, nr_keys, "all keys");
		bk_prog_unload(&l);
	}
}

/* Sizes of the example formats' programs, for the record. */
static void sizes(struct kenv *k)
{
	struct { const char *name; struct bkey_format f; } ex[] = {
		{ "ex2", ex2_format() }, { "ex3", ex3_format() }, { "ex4", ex4_format() },
		{ "ex7", ex7_format(BKEY_FORMAT_ERA_CURRENT) }, { "ex11", ex11_format() },
		{ "current", bkey_format_current },
	};
	static struct bk_prog p;
	unsigned i;

	for (i = 0; i < sizeof(ex) / sizeof(ex[0]); i++) {
		struct bk_loaded l;

		if (!ASSERT_OK(load_format(k, &ex[i].f, k->ft.best, &p, &l), ex[i].name))
			continue;
		printf("  %-8s %s: %u xlated insns, %u JIT bytes, %u insns verified\n",
		       ex[i].name, p.name, l.xlated_insns, l.jited_bytes, l.verified_insns);
		ASSERT_GT(l.xlated_insns, 0, "xlated");
		if (k->ft.jit)
			ASSERT_GT(l.jited_bytes, 0, "jited");
		bk_prog_unload(&l);
	}
}

/*
 * ns per key of the generated program (the kernel's time, a run over
 * 1024 keys) and of generic C (the model's streaming unpack) over the same
 * keys, in interleaved rounds, after checking every key against the model.
 * For VMs, where `make bench` does not run: under TCG only the ratio means
 * anything, and it is printed, never asserted.
 */
static void speed_vs_c(struct kenv *k)
{
	struct { const char *name; struct bkey_format f; } ex[] = {
		{ "ex2", ex2_format() }, { "ex3", ex3_format() }, { "ex7",
		  ex7_format(BKEY_FORMAT_ERA_CURRENT) }, { "current", bkey_format_current },
	};
	enum { NR_KEYS = 1024, ROUNDS = 5, REPEAT = 20 };
	static uint64_t words[NR_KEYS * 8];
	static struct bkey ref[NR_KEYS];
	static struct bk_prog p;
	uint64_t seed = 7;
	unsigned i, r, rep, nr;

	for (i = 0; i < sizeof(ex) / sizeof(ex[0]); i++) {
		uint32_t n = rnd_stream(&seed, &ex[i].f, NR_KEYS, words, NR_KEYS * 8, &nr), got;
		uint32_t status = ~0u;
		double bpf[ROUNDS], c[ROUNDS];
		struct bk_loaded l;

		if (!ASSERT_OK(load_format(k, &ex[i].f, k->ft.best, &p, &l), ex[i].name))
			continue;
		bkey_unpack_stream(&ex[i].f, words, n, ref);
		if (!ASSERT_OK(bk_unpack_words(&l, &k->rt, words, n, &status, &got, NULL), "run") ||
		    !ASSERT_EQ(status, BK_OK, "run status") ||
		    !ASSERT_EQ(got, nr, "keys") ||
		    !ASSERT_MEMEQ(k->rt.out, ref, sizeof(ref[0]) * nr, "kernel = model")) {
			bk_prog_unload(&l);
			continue;
		}
		for (r = 0; r < ROUNDS; r++) {
			uint32_t d = 0;
			double t0;

			ASSERT_OK(bk_run_words(&l, &k->rt, 0, n, 0, REPEAT, &d), "timed run");
			bpf[r] = (double)d / nr;
			t0 = bk_now_ns();
			for (rep = 0; rep < REPEAT; rep++)
				bkey_unpack_stream(&ex[i].f, words, n, ref);
			c[r] = (bk_now_ns() - t0) / REPEAT / nr;
		}
		printf("  %-8s speed: bpf %.2f ns/key, generic C %.2f ns/key, bpf/C %.2f\n",
		       ex[i].name, bk_median(bpf, ROUNDS), bk_median(c, ROUNDS),
		       bk_median(bpf, ROUNDS) / bk_median(c, ROUNDS));
		bk_prog_unload(&l);
	}
}

/*
 * A rejected program returns the verifier's log; the report
 * (bk_report_reject()) gives the log and our listing, which names it.
 */
static void rejection_log(struct kenv *k)
{
	static struct bk_prog p;
	static char log[1 << 16];
	struct bkey_format f = ex2_format();
	struct bk_gen_opts o = {
		.shape = k->ft.best, .chunk = 1,
		.ctl_fd = k->rt.ctl_fd, .in_fd = k->rt.in_fd, .out_fd = k->rt.out_fd,
		.strict_align = bk_strict_align_default(),	/* so only our break fails */
	};
	struct bk_loaded l;
	char *listing = NULL;
	size_t len = 0;
	FILE *mem;
	int ret, i;

	if (!ASSERT_OK(bk_gen_unpack(&f, &o, &p, NULL), "generate"))
		return;
	/* break it: the first field load now reads from r3, never written */
	for (i = 0; i < p.e.cnt; i++)
		if (p.e.insn[i].code == (BPF_LDX | BPF_DW | BPF_MEM) && p.e.insn[i].src_reg == BPF_REG_1) {
			p.e.insn[i].src_reg = BPF_REG_3;
			p.e.insn[i].off = 4096;
			break;
		}
	ret = bk_prog_load(&p, &l, log, sizeof(log));
	if (!ASSERT_ERR(ret, "verifier rejects")) {
		bk_prog_unload(&l);
		return;
	}
	ASSERT_HAS_SUBSTR(log, "processed", "log is the verifier's");
	ASSERT_HAS_SUBSTR(log, "R3", "log names the register");
	mem = open_memstream(&listing, &len);
	ASSERT_TRUE(bk_report_reject(mem, "test", &p, ret, log, NULL, 0), "a verdict is reported");
	ASSERT_FALSE(bk_report_reject(mem, "test", &p, -ENOMEM, log, NULL, 0),
		     "no verdict, no report");
	fclose(mem);
	ASSERT_HAS_SUBSTR(listing, "test: the verifier rejected bk2_", "the report names the program");
	ASSERT_HAS_SUBSTR(listing, "R3", "the report has the verifier's log");
	ASSERT_HAS_SUBSTR(listing, "(u64 *)(r3 +4096)", "listing shows the bad load");
	ASSERT_HAS_SUBSTR(listing, "; header:", "listing has the lines");
	free(listing);
}

DEFINE_TEST(kernel)
{
	struct kenv *k;

	if (test__start_subtest("prog_names"))
		names();
	if (test__start_subtest("btf_linum") && (k = kenv_get()))
		linum_lines(k);
	if (test__start_subtest("bad_runs") && (k = kenv_get()))
		bad_runs(k);
	if (test__start_subtest("example_sizes") && (k = kenv_get()))
		sizes(k);
	if (test__start_subtest("speed_vs_c") && (k = kenv_get()))
		speed_vs_c(k);
	if (test__start_subtest("bad_tables") && (k = kenv_get()))
		bad_tables(k);
	if (test__start_subtest("repeat_runs") && (k = kenv_get()))
		repeat_runs(k);
	if (test__start_subtest("rejection_log") && (k = kenv_get()))
		rejection_log(k);
}
