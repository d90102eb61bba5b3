// SPDX-License-Identifier: GPL-2.0
/*
 * Generated programs against the model and the bit-by-bit reference, in
 * the kernel: worked examples, exhaustive width classes, straddles, and
 * many random formats.  Every program must pass the verifier.
 */
#include <stdlib.h>
#include <string.h>

#include "test_progs.h"
#include "examples.h"
#include "kenv.h"

#define STREAM_WORDS	4096

static uint64_t stream[STREAM_WORDS];

/*
 * Random keys for @f, checked in every shape (bpf_loop with chunk 1 and
 * 4), and where this host allows unaligned access, the table walk again
 * with strict alignment: only aligned loads, as riscv64 runs it.  The
 * table walk also as a shape program (made from f's shape with other
 * offsets, run with f's template), with and without strict alignment.
 */
static bool check_format_all_shapes(struct kenv *k, const struct bkey_format *f,
				    uint64_t *seed, unsigned nr_keys, struct kcheck_stats *st)
{
	/*
	 * The table walk in bpf_loop callbacks: on every format where it is
	 * the kernel's table walk (no may_goto), else on one call in eight
	 * (the guests' TCG time: it is two more programs a format)
	 */
	static unsigned calls;
	bool loop_table = !k->ft.may_goto || calls++ % 8 == 0;
	enum bk_shape sh[2];
	unsigned got;
	uint32_t n = rnd_stream(seed, f, nr_keys, stream, STREAM_WORDS, &got);
	int i, nsh = kenv_shapes(k, sh);
	bool ok = true;

	for (i = 0; i < nsh && ok; i++) {
		ok &= kcheck_stream(k, f, sh[i], BK_WALK_U64S, 1, stream, n, st);
		if (sh[i] == BK_SHAPE_BPF_LOOP && ok)
			ok &= kcheck_stream(k, f, sh[i], BK_WALK_U64S, 4, stream, n, st);
		/* the table walk in bpf_loop callbacks, 1 and 3 keys a call,
		 * as an exact and as a shape program */
		if (sh[i] == BK_SHAPE_BPF_LOOP && loop_table && ok)
			ok &= kcheck_stream(k, f, sh[i], BK_WALK_TABLE, 1, stream, n, st);
		if (sh[i] == BK_SHAPE_BPF_LOOP && loop_table && ok) {
			k->by_shape = true;
			ok &= kcheck_stream(k, f, sh[i], BK_WALK_TABLE, 3, stream, n, st);
			k->by_shape = false;
		}
		if (sh[i] == BK_SHAPE_MAY_GOTO && ok)
			ok &= kcheck_stream(k, f, sh[i], BK_WALK_TABLE, 1, stream, n, st);
		if (sh[i] == BK_SHAPE_MAY_GOTO && ok && !k->strict_align) {
			k->strict_align = true;
			ok &= kcheck_stream(k, f, sh[i], BK_WALK_TABLE, 1, stream, n, st);
			k->strict_align = false;
		}
		if (sh[i] == BK_SHAPE_MAY_GOTO && ok) {
			k->by_shape = true;
			ok &= kcheck_stream(k, f, sh[i], BK_WALK_TABLE, 1, stream, n, st);
			if (ok && !k->strict_align) {
				k->strict_align = true;
				ok &= kcheck_stream(k, f, sh[i], BK_WALK_TABLE, 1, stream, n, st);
				k->strict_align = false;
			}
			k->by_shape = false;
		}
	}
	return ok;
}

/*
 * The may_goto loop with 2..BK_CHUNK_MAX keys per pass, both walks: runs of
 * 1..9 keys end at every point of a pass, so each mid-pass end test runs
 * (its own test, the last key of the run, stops the walk there).
 */
static bool check_chunks(struct kenv *k, const struct bkey_format *f, uint64_t *seed,
			 struct kcheck_stats *st)
{
	unsigned chunk, nr, got;
	bool ok = true;

	if (!k->ft.may_goto)
		return true;
	for (chunk = 2; chunk <= BK_CHUNK_MAX && ok; chunk++)
		for (nr = 1; nr <= 9 && ok; nr++) {
			uint32_t n = rnd_stream(seed, f, nr, stream, STREAM_WORDS, &got);

			ok &= kcheck_stream(k, f, BK_SHAPE_MAY_GOTO, BK_WALK_U64S, chunk, stream, n, st);
			ok &= kcheck_stream(k, f, BK_SHAPE_MAY_GOTO, BK_WALK_TABLE, chunk, stream, n, st);
		}
	return ok;
}

static void report(const char *what, const struct kcheck_stats *st)
{
	char name[96];

	snprintf(name, sizeof(name), "%s: programs accepted by the verifier", what);
	test__count(name, st->accepted);
	snprintf(name, sizeof(name), "%s: keys compared (kernel, model, bit-by-bit)", what);
	test__count(name, st->keys);
}

/* The spec's examples: their keys, then random keys, through the kernel. */
static void examples_in_kernel(struct kenv *k)
{
	struct {
		const char		*name;
		struct bkey_format	f;
		struct bkey		key;
	} ex[] = {
		{ "ex2", ex2_format(), ex_key(0x1000, 0x20, 0xffffffff, 8, 0, 0, 8, 6) },
		{ "ex3", ex3_format(), ex_key(0xaccde12345, 0x123456789a, 0xffffffff, 0xabc, 0, 0, 7, 6) },
		{ "ex4", ex4_format(), ex_key(0x1042, 0xfedcba9876543210, 0, 0, 0, 0x41, 9, 10) },
		{ "ex7", ex7_format(BKEY_FORMAT_ERA_CURRENT),
		  ex_key(0x2a, 0x1111, 0xfffffff2, 0x80, 0, 0x5001, 6, 8) },
		{ "ex7_2023", ex7_format(BKEY_FORMAT_ERA_2023),
		  ex_key(0x2a, 0x1111, 0xfffffff2, 0x80, 0, 0x5001, 6, 8) },
		{ "ex11", ex11_format(), ex_key(0x56, 0x180, 0, 0x100, 0, 0, 7, 6) },
		{ "current", bkey_format_current,
		  ex_key(0x1122334455667788, 0x99aabbccddeeff00, 0xdeadbeef, 0x10, 0x01020304,
			 0x0a0b0c0d0e0f1011, 7, 6) },
	};
	struct kcheck_stats st = {};
	uint64_t seed = 0x5eed0001;
	unsigned i;

	for (i = 0; i < sizeof(ex) / sizeof(ex[0]); i++) {
		enum bk_shape sh[2];
		uint64_t w[5 + 8] = {};
		unsigned val = ex[i].key.u64s - BKEY_U64s, j;
		int s, nsh = kenv_shapes(k, sh);

		if (!ASSERT_OK(bkey_pack_key(&ex[i].f, &ex[i].key, w, NULL), ex[i].name))
			continue;
		for (j = 0; j < val; j++)
			w[ex[i].f.key_u64s + j] = 0x1111111111111111ULL * (j + 1);
		for (s = 0; s < nsh; s++)
			kcheck_stream(k, &ex[i].f, sh[s], BK_WALK_U64S, 1, w, ex[i].f.key_u64s + val, &st);
		check_format_all_shapes(k, &ex[i].f, &seed, 64, &st);
		check_chunks(k, &ex[i].f, &seed, &st);
	}
	/* example 5: all widths 0, a one-word key that is only a header */
	{
		struct bkey_format_state s5;
		struct bkey key = ex_key(77, 1234, 1, 0, 0, 0, 6, 8);
		struct bkey_format f;
		uint64_t w[2] = {};

		bkey_format_init(&s5);
		bkey_format_add_pos(&s5, (struct bpos){ 77, 1234, 1 });
		bkey_format_add_key(&s5, &key);
		f = bkey_format_done(&s5, BKEY_FORMAT_ERA_CURRENT);
		bkey_pack_key(&f, &key, w, NULL);
		kcheck_stream(k, &f, k->ft.best, BK_WALK_U64S, 1, w, 2, &st);
		check_format_all_shapes(k, &f, &seed, 64, &st);
	}
	report("examples", &st);
}

/* Every width of every field, the other fields random. */
static void every_width(struct kenv *k)
{
	struct kcheck_stats st = {};
	uint64_t seed = 0x5eed0002;
	unsigned i, b;
	bool ok = true;

	for (i = 0; i < BKEY_NR_FIELDS && ok; i++)
		for (b = 0; b <= bkey_field_width[i] && ok; b++) {
			struct bkey_format f = rnd_format(&seed, i, b);

			ok &= check_format_all_shapes(k, &f, &seed, 32, &st);
		}
	report("every width", &st);
}

/*
 * Straddles: a field of each width placed at every bit position relative
 * to a word boundary (the fields before it absorb the lead), including
 * 64-bit fields straddling and aligned.
 */
static void straddles(struct kenv *k)
{
	static const unsigned widths[] = { 1, 7, 8, 13, 31, 32, 33, 40, 63, 64 };
	struct kcheck_stats st = {};
	uint64_t seed = 0x5eed0003;
	unsigned field, wi, lead;
	bool ok = true;

	for (field = 1; field < BKEY_NR_FIELDS && ok; field++)
		for (wi = 0; wi < sizeof(widths) / sizeof(widths[0]) && ok; wi++)
			for (lead = 0; lead < 64 && ok; lead += 3) {
				struct bkey_format f = {};
				unsigned b = widths[wi], left = lead, j;

				if (b > bkey_field_width[field])
					continue;
				/* the fields before @field take @lead bits in all */
				for (j = 0; j < field && left; j++) {
					unsigned take = left < bkey_field_width[j] ? left : bkey_field_width[j];

					f.bits_per_field[j] = take;
					left -= take;
				}
				f.bits_per_field[field] = b;
				for (j = field + 1; j < BKEY_NR_FIELDS; j++)
					f.bits_per_field[j] = rnd_below(&seed, 3) ? 0 :
						rnd_width_any(&seed, bkey_field_width[j]);
				rnd_offsets(&seed, &f);
				ok &= check_format_all_shapes(k, &f, &seed, 16, &st);
			}
	/* 64-bit fields aligned: inode alone in the top word of 2..5 words */
	for (lead = 1; lead <= 4 && ok; lead++) {
		struct bkey_format f = { .bits_per_field = { 64 } };

		f.bits_per_field[5] = lead == 1 ? 0 : 64;
		f.bits_per_field[1] = lead >= 3 ? 64 : 0;
		f.bits_per_field[3] = lead == 4 ? 32 : 0;
		f.bits_per_field[4] = lead == 4 ? 32 : 0;
		rnd_offsets(&seed, &f);
		ok &= check_format_all_shapes(k, &f, &seed, 16, &st);
	}
	report("straddles", &st);
}

static void zero_and_current(struct kenv *k)
{
	struct kcheck_stats st = {};
	uint64_t seed = 0x5eed0004;
	unsigned i;
	bool ok = true;

	for (i = 0; i < 16 && ok; i++) {
		struct bkey_format f = {};

		rnd_offsets(&seed, &f);
		ok &= ASSERT_EQ(f.key_u64s, 1, "all-zero format has one word");
		ok &= check_format_all_shapes(k, &f, &seed, 64, &st);
	}
	ok &= check_format_all_shapes(k, &bkey_format_current, &seed, 256, &st);
	report("all-zero and current", &st);
}

/* Many random valid formats, random keys, the best shape (and its shape program). */
static void random_formats(struct kenv *k)
{
	const char *env = getenv("BKEY_RANDOM_FORMATS");
	unsigned long nr = env ? strtoul(env, NULL, 0) : 100000, i;
	struct kcheck_stats st = {};
	uint64_t seed = 0x5eed0005;
	bool ok = true;

	for (i = 0; i < nr && ok; i++) {
		struct bkey_format f = rnd_format(&seed, -1, 0);
		unsigned got;
		uint32_t n = rnd_stream(&seed, &f, 4 + rnd_below(&seed, 12), stream,
					STREAM_WORDS, &got);

		/* both walks of the best shape, and the table walk's shape
		 * program, in turn */
		k->by_shape = k->ft.may_goto && i % 3 == 2;
		ok &= kcheck_stream(k, &f, k->ft.best, k->ft.may_goto && i % 3 ? BK_WALK_TABLE :
				    BK_WALK_U64S, 1, stream, n, &st);
		k->by_shape = false;
	}
	test__count("random formats checked", st.formats);
	report("random formats", &st);
}

DEFINE_TEST(gen_exact)
{
	struct kenv *k;

	if (test__start_subtest("examples") && (k = kenv_get()))
		examples_in_kernel(k);
	if (test__start_subtest("every_width") && (k = kenv_get()))
		every_width(k);
	if (test__start_subtest("straddles") && (k = kenv_get()))
		straddles(k);
	if (test__start_subtest("zero_and_current") && (k = kenv_get()))
		zero_and_current(k);
	if (test__start_subtest("random_formats") && (k = kenv_get()))
		random_formats(k);
}
