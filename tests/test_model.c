// SPDX-License-Identifier: GPL-2.0
/*
 * The model beyond the worked examples: every validation rule refused with
 * its reason, format computation invariants, pack failure rules, lossy
 * position packing guarantees, packed comparison, the text parser.
 */
#include <errno.h>
#include <string.h>

#include "test_progs.h"
#include "examples.h"
#include "kenv.h"
#include "gen.h"
#include "ondisk.h"

struct bad_format {
	const char		*name;
	struct bkey_format	f;
	enum bkey_format_rule	rule;
	int			field;
	const char		*msg;	/* substring of the message */
};

#define FMT(ku, nf, b0, b1, b2, b3, b4, b5, o0, o1, o2, o3, o4, o5)	\
	{ .key_u64s = ku, .nr_fields = nf,				\
	  .bits_per_field = { b0, b1, b2, b3, b4, b5 },			\
	  .field_offset = { o0, o1, o2, o3, o4, o5 } }

static const struct bad_format bad_formats[] = {
	{ "nr_fields_5", FMT(1, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0),
	  BKEY_FMT_NR_FIELDS, -1, "nr_fields=5" },
	{ "nr_fields_7", FMT(1, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0),
	  BKEY_FMT_NR_FIELDS, -1, "nr_fields=7" },
	{ "inode_65_bits", FMT(2, 6, 65, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0),
	  BKEY_FMT_FIELD_TOO_WIDE, 0, "field inode: bits=65" },
	{ "snapshot_33_bits", FMT(1, 6, 0, 0, 33, 0, 0, 0, 0, 0, 0, 0, 0, 0),
	  BKEY_FMT_FIELD_TOO_WIDE, 2, "field snapshot: bits=33" },
	{ "size_36_bits_2017_rule", FMT(1, 6, 0, 0, 0, 36, 0, 0, 0, 0, 0, 0, 0, 0),
	  BKEY_FMT_FIELD_TOO_WIDE, 3, "field size: bits=36 exceeds its unpacked width 32" },
	{ "version_lo_64_offset", FMT(2, 6, 0, 0, 0, 0, 0, 64, 0, 0, 0, 0, 0, 1),
	  BKEY_FMT_FULL_WIDTH_OFFSET, 5, "field version_lo is full width" },
	{ "version_hi_32_offset", FMT(1, 6, 0, 0, 0, 0, 32, 0, 0, 0, 0, 0, 7, 0),
	  BKEY_FMT_FULL_WIDTH_OFFSET, 4, "offset must be 0, not 0x7" },
	{ "offset_wraps_64", FMT(1, 6, 0, 8, 0, 0, 0, 0, 0, 0xffffffffffffff01ULL, 0, 0, 0, 0),
	  BKEY_FMT_OFFSET_OVERFLOW, 1, "field offset: offset 0xffffffffffffff01" },
	{ "snapshot_over_32", FMT(1, 6, 0, 0, 8, 0, 0, 0, 0, 0, 0xffffff01ULL, 0, 0, 0),
	  BKEY_FMT_OFFSET_OVERFLOW, 2, "overflows the 32-bit slot" },
	{ "size_offset_ge_2_32", FMT(1, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x100000000ULL, 0, 0),
	  BKEY_FMT_OFFSET_OVERFLOW, 3, "field size: offset 0x100000000" },
	{ "zero_width_huge_offset", FMT(1, 6, 0, 0, 0, 0, 0x0, 0, 0, 0, 0, 0, 0x1ffffffffULL, 0),
	  BKEY_FMT_OFFSET_OVERFLOW, 4, "field version_hi" },
	{ "key_u64s_too_big", FMT(2, 6, 8, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0),
	  BKEY_FMT_KEY_U64S, -1, "key_u64s=2, but 24 + sum(bits) needs exactly 1" },
	{ "key_u64s_too_small", FMT(1, 6, 64, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0),
	  BKEY_FMT_KEY_U64S, -1, "needs exactly 2" },
	{ "key_u64s_zero", FMT(0, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0),
	  BKEY_FMT_KEY_U64S, -1, "key_u64s=0" },
};

/* Every rule violated, refused by the model and by the generator. */
static void validation_rules(void)
{
	bool seen[BKEY_FMT_KEY_U64S + 1] = {};
	unsigned i;

	for (i = 0; i < sizeof(bad_formats) / sizeof(bad_formats[0]); i++) {
		const struct bad_format *b = &bad_formats[i];
		struct bkey_format_err err = {};
		struct bk_gen_opts o = { .shape = BK_SHAPE_MAY_GOTO, .chunk = 1 };
		static struct bk_prog p;
		char msg[256];

		ASSERT_EQ(bkey_format_validate(&b->f, &err), -EINVAL, b->name);
		ASSERT_EQ(err.rule, b->rule, b->name);
		ASSERT_EQ(err.field, b->field, b->name);
		bkey_format_err_str(&err, msg, sizeof(msg));
		ASSERT_HAS_SUBSTR(msg, b->msg, b->name);
		ASSERT_HAS_SUBSTR(msg, bkey_format_rule_name(b->rule), "message names the rule");
		memset(&err, 0, sizeof(err));
		ASSERT_EQ(bk_gen_unpack(&b->f, &o, &p, &err), -EINVAL, "generator refuses");
		ASSERT_EQ(err.rule, b->rule, "generator names the same rule");
		seen[b->rule] = true;
	}
	for (i = BKEY_FMT_NR_FIELDS; i <= BKEY_FMT_KEY_U64S; i++)
		ASSERT_TRUE(seen[i], bkey_format_rule_name(i));
	/* the boundary cases just inside the rules are valid */
	{
		struct bkey_format ok1 = FMT(1, 6, 0, 0, 8, 0, 0, 0, 0, 0, 0xffffff00ULL, 0, 0, 0);
		struct bkey_format ok2 = FMT(1, 6, 0, 8, 0, 0, 0, 0, 0, 0xffffffffffffff00ULL, 0, 0, 0, 0);
		struct bkey_format ok3 = FMT(1, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xffffffffULL, 0, 0);

		ASSERT_OK(bkey_format_validate(&ok1, NULL), "snapshot offset at its limit");
		ASSERT_OK(bkey_format_validate(&ok2, NULL), "offset offset at its limit");
		ASSERT_OK(bkey_format_validate(&ok3, NULL), "0-bit size with offset 2^32-1");
	}
}

/* Random key sets: computed formats are valid and pack every key. */
static void format_done_invariants(void)
{
	static const enum bkey_format_era eras[] = {
		BKEY_FORMAT_ERA_CURRENT, BKEY_FORMAT_ERA_2023,
	};
	uint64_t seed = 0x5eed0101;
	unsigned iter, e;

	for (iter = 0; iter < 2000; iter++) {
		struct bkey keys[16];
		struct bkey_format src = rnd_format(&seed, -1, 0);
		unsigned nr = 1 + rnd_below(&seed, 16), i;
		struct bpos min, max;
		uint64_t words[300];

		/* keys drawn from a random format's range: realistic clustering */
		for (i = 0; i < nr; i++) {
			unsigned got;

			rnd_stream(&seed, &src, 1, words, 300, &got);
			bkey_unpack_key(&src, words, &keys[i]);
		}
		min = (struct bpos){ keys[0].inode, keys[0].offset, keys[0].snapshot };
		max = min;
		for (i = 1; i < nr; i++) {
			struct bpos p = { keys[i].inode, keys[i].offset, keys[i].snapshot };

			if (bpos_cmp(p, min) < 0)
				min = p;
			if (bpos_cmp(p, max) > 0)
				max = p;
		}
		for (e = 0; e < 2; e++) {
			struct bkey_format_state s;
			struct bkey_format f;
			struct bkey_format_err err;
			bool ok = true;

			bkey_format_init(&s);
			bkey_format_add_pos(&s, min);
			bkey_format_add_pos(&s, max);
			for (i = 0; i < nr; i++)
				bkey_format_add_key(&s, &keys[i]);
			f = bkey_format_done(&s, eras[e]);
			if (!ASSERT_OK(bkey_format_validate(&f, &err), "computed format is valid"))
				return;
			for (i = 0; i < nr && ok; i++) {
				uint64_t w[5];
				struct bkey back;

				ok &= ASSERT_OK(bkey_pack_key(&f, &keys[i], w, NULL), "every key packs");
				bkey_unpack_key(&f, w, &back);
				ok &= ASSERT_MEMEQ(&back, &keys[i], 40, "round trip");
			}
			ok &= ASSERT_OK(bkey_pack_pos(&f, min, words), "min packs");
			ok &= ASSERT_OK(bkey_pack_pos(&f, max, words), "max packs");
			if (!ok)
				return;
			/* the 2023 rule reserves up to 4 size bits, never past 32 */
			if (eras[e] == BKEY_FORMAT_ERA_2023)
				ASSERT_LE(f.bits_per_field[BKEY_FIELD_SIZE], 32, "size <= 32");
		}
	}
}

/* Pack fails exactly when a value is below the offset or too wide. */
static void pack_failures(void)
{
	uint64_t seed = 0x5eed0102;
	unsigned iter;

	for (iter = 0; iter < 20000; iter++) {
		struct bkey_format f = rnd_format(&seed, -1, 0);
		struct bkey k = ex_key(rnd_next(&seed), rnd_next(&seed), rnd_next(&seed),
				       rnd_next(&seed), rnd_next(&seed), rnd_next(&seed),
				       5 + rnd_below(&seed, 251), rnd_below(&seed, 256));
		uint64_t v[BKEY_NR_FIELDS], w[5];
		struct bkey_pack_err err;
		int want_field = -1, i, ret;

		if (rnd_below(&seed, 2)) {
			/* mostly in range, sometimes not */
			unsigned got;

			rnd_stream(&seed, &f, 1, w, 5, &got);
			if (!got)
				continue;
			if (bkey_format_byte(w) == KEY_FORMAT_LOCAL_BTREE)
				bkey_unpack_key(&f, w, &k);
			else
				memcpy(&k, w, 40);
		}
		bkey_fields(&k, v);
		for (i = 0; i < BKEY_NR_FIELDS && want_field < 0; i++)
			if (v[i] < f.field_offset[i] ||
			    bkey_fls64(v[i] - f.field_offset[i]) > f.bits_per_field[i])
				want_field = i;
		ret = bkey_pack_key(&f, &k, w, &err);
		if (want_field < 0) {
			if (!ASSERT_OK(ret, "fits, so it packs"))
				return;
		} else if (!ASSERT_ERR(ret, "does not fit") ||
			   !ASSERT_EQ(err.field, want_field, "first failing field")) {
			return;
		}
	}
	/* the input must be an unpacked key */
	{
		struct bkey k = ex_key(1, 2, 3, 0, 0, 0, 5, 1);
		struct bkey_format f = bkey_format_current;
		struct bkey_pack_err err;
		uint64_t w[5];

		k.format_nw = 0;
		ASSERT_ERR(bkey_pack_key(&f, &k, w, &err), "packed input refused");
		ASSERT_EQ(err.why, BKEY_PACK_NOT_UNPACKED, "reason");
	}
}

/* Lossy packing: EXACT decodes to the position, SMALLER to the greatest
 * representable position below it, FAIL only below every position. */
static void lossy_pos(void)
{
	uint64_t seed = 0x5eed0103;
	unsigned iter, counts[3] = {};

	for (iter = 0; iter < 50000; iter++) {
		struct bkey_format f = rnd_format(&seed, -1, 0);
		struct bpos p = { rnd_next(&seed), rnd_next(&seed), rnd_next(&seed) };
		struct bpos rmin = { f.field_offset[0], f.field_offset[1], f.field_offset[2] };
		uint64_t w[5], succ[5];
		enum bkey_pack_pos_ret r;
		struct bpos got;

		/* near the representable box half the time */
		if (rnd_below(&seed, 2)) {
			p.inode = rnd_range(&seed, f.field_offset[0] ? f.field_offset[0] - 1 : 0,
					    f.field_offset[0] + bkey_mask(f.bits_per_field[0]));
			p.offset = rnd_range(&seed, f.field_offset[1] ? f.field_offset[1] - 1 : 0,
					     f.field_offset[1] + bkey_mask(f.bits_per_field[1]));
			p.snapshot = rnd_range(&seed, f.field_offset[2] ? f.field_offset[2] - 1 : 0,
					       (uint32_t)(f.field_offset[2] + bkey_mask(f.bits_per_field[2])));
		}
		r = bkey_pack_pos_lossy(&f, p, w);
		counts[r]++;
		if (r == BKEY_PACK_POS_FAIL) {
			if (!ASSERT_EQ(bpos_cmp(p, rmin) < 0, 1, "FAIL only below the minimum"))
				return;
			continue;
		}
		got = bkey_unpack_pos(&f, w);
		if (r == BKEY_PACK_POS_EXACT) {
			if (!ASSERT_EQ(bpos_cmp(got, p), 0, "EXACT decodes to the position"))
				return;
			if (!ASSERT_OK(bkey_pack_pos(&f, p, succ), "exact pack agrees"))
				return;
			if (!ASSERT_MEMEQ(succ, w, 8 * f.key_u64s, "same bytes"))
				return;
			continue;
		}
		if (!ASSERT_EQ(bpos_cmp(got, p), -1, "SMALLER decodes below"))
			return;
		memcpy(succ, w, sizeof(succ));
		if (bkey_packed_successor(&f, succ)) {
			struct bpos next = bkey_unpack_pos(&f, succ);

			if (!ASSERT_EQ(bpos_cmp(next, p), 1, "successor is above: greatest below"))
				return;
		}
	}
	test__count("lossy packing, exact results", counts[0]);
	test__count("lossy packing, smaller results", counts[1]);
	test__count("lossy packing, fail results", counts[2]);
}

/* Packed comparison agrees with position comparison in one format. */
static void packed_cmp(void)
{
	uint64_t seed = 0x5eed0104;
	unsigned iter;

	for (iter = 0; iter < 50000; iter++) {
		struct bkey_format f = rnd_format(&seed, -1, 0);
		uint64_t a[5], b[5];
		struct bkey ka, kb;
		unsigned got, gdb;
		int c;

		rnd_stream(&seed, &f, 1, a, 5, &got);
		if (rnd_below(&seed, 4))
			rnd_stream(&seed, &f, 1, b, 5, &got);
		else
			memcpy(b, a, sizeof(b));	/* equal positions too */
		if (bkey_format_byte(a) || bkey_format_byte(b))
			continue;	/* packed against packed only */
		bkey_unpack_key(&f, a, &ka);
		bkey_unpack_key(&f, b, &kb);
		c = bpos_cmp((struct bpos){ ka.inode, ka.offset, ka.snapshot },
			     (struct bpos){ kb.inode, kb.offset, kb.snapshot });
		if (!ASSERT_EQ(bkey_cmp_packed(&f, a, b), c, "cmp_packed == bpos_cmp"))
			return;
		gdb = bkey_greatest_differing_bit(&f, a, b);
		if (c)
			ASSERT_LE(gdb, bkey_format_nr_key_bits(&f) - 1, "gdb in range");
		else
			ASSERT_EQ(gdb, 0, "gdb of equal keys");
	}
}

static void parse_format(void)
{
	struct bkey_format f, want = ex3_format();
	char err[200], buf[300];

	ASSERT_OK(bkey_format_parse("key_u64s=2 bits=40,40,0,12,0,0 "
				    "offsets=0x100000000,0,0xffffffff,0,0,0", &f, err, sizeof(err)),
		  "parse");
	ASSERT_MEMEQ(&f, &want, sizeof(f), "parsed");
	bkey_format_to_str(&f, buf, sizeof(buf));
	ASSERT_OK(bkey_format_parse(buf, &f, err, sizeof(err)), "reparse own text");
	ASSERT_MEMEQ(&f, &want, sizeof(f), "round trip");

	ASSERT_ERR(bkey_format_parse("key_u64s=2 bits=40,40,0,12,0 offsets=0,0,0,0,0,0", &f,
				     err, sizeof(err)), "5 widths");
	ASSERT_HAS_SUBSTR(err, "bits", "names bits");
	ASSERT_ERR(bkey_format_parse("key_u64s=2 bits=40,40,0,12,0,0", &f, err, sizeof(err)),
		   "no offsets");
	ASSERT_HAS_SUBSTR(err, "missing offsets", "names offsets");
	ASSERT_ERR(bkey_format_parse("key_u64s=2 bits=40,40,0,12,0,300 offsets=0,0,0,0,0,0", &f,
				     err, sizeof(err)), "width 300");
	ASSERT_HAS_SUBSTR(err, "bits[5]: \"300\"", "names the value");
	ASSERT_ERR(bkey_format_parse("key_u64s=2 bits=1,2,3,4,5,6 offsets=0,0,0,0,0,0x1ffffffffffffffff",
				     &f, err, sizeof(err)), "offset > u64");
	ASSERT_HAS_SUBSTR(err, "offsets[5]", "names the offset");
	ASSERT_ERR(bkey_format_parse("key_u64s=2 bits=1,2,3,4,5,6 offsets=0,0,0,0,0,0 colour=red",
				     &f, err, sizeof(err)), "unknown token");
	ASSERT_HAS_SUBSTR(err, "colour=red", "names the token");
	ASSERT_ERR(bkey_format_parse("key_u64s=-1 bits=1,2,3,4,5,6 offsets=0,0,0,0,0,0",
				     &f, err, sizeof(err)), "negative");
}

/* CRC-32C bit by bit (reflected, polynomial 0x82f63b78), for the test only. */
static uint32_t crc32c_bitwise(const uint8_t *p, size_t len)
{
	uint32_t crc = ~0u;
	unsigned b;

	while (len--) {
		crc ^= *p++;
		for (b = 0; b < 8; b++)
			crc = crc & 1 ? (crc >> 1) ^ 0x82f63b78u : crc >> 1;
	}
	return ~crc;
}

/*
 * bch_crc32c(), which checksums superblocks and bsets, against the bitwise
 * CRC at every length 0..64 and every start 0..7: the 8-byte steps and
 * the byte tail both, which the real images' regions (multiples of 8)
 * never reach.  And the standard check value.
 */
static void crc32c_lengths(void)
{
	uint8_t buf[80];
	uint64_t seed = 0xc3c3c3c3ull;
	unsigned off, len, bad = 0;

	ASSERT_EQ(~bch_crc32c(~0u, "123456789", 9), 0xe3069283u, "check value of \"123456789\"");
	for (len = 0; len < sizeof(buf); len++)
		buf[len] = (uint8_t)rnd_next(&seed);
	for (off = 0; off < 8; off++)
		for (len = 0; len <= 64; len++) {
			uint32_t got = ~bch_crc32c(~0u, buf + off, len);
			uint32_t want = crc32c_bitwise(buf + off, len);

			if (!ASSERT_EQ(got, want, "bch_crc32c == bitwise CRC-32C")) {
				fprintf(stderr, "  start %u, length %u\n", off, len);
				if (++bad > 3)
					return;
			}
		}
	/* split updates equal one: the raw update carries no inversion */
	ASSERT_EQ(~bch_crc32c(bch_crc32c(~0u, buf, 13), buf + 13, 30), crc32c_bitwise(buf, 43),
		  "two updates, 13 + 30 bytes");
}

DEFINE_TEST(model)
{
	if (test__start_subtest("validation_rules"))
		validation_rules();
	if (test__start_subtest("format_done_invariants"))
		format_done_invariants();
	if (test__start_subtest("pack_failures"))
		pack_failures();
	if (test__start_subtest("lossy_pos"))
		lossy_pos();
	if (test__start_subtest("packed_cmp"))
		packed_cmp();
	if (test__start_subtest("parse_format"))
		parse_format();
	if (test__start_subtest("crc32c_lengths"))
		crc32c_lengths();
}
