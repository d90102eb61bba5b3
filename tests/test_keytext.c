// SPDX-License-Identifier: GPL-2.0
/* The key text format and queries: round trips and every refusal. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "test_progs.h"
#include "keytext.h"
#include "kenv.h"

static void round_trip(void)
{
	uint64_t seed = 0x5eed0401, val[BKEY_VAL_U64s_MAX], back_val[BKEY_VAL_U64s_MAX];
	unsigned i;

	for (i = 0; i < 2000; i++) {
		struct bkey k = {
			.u64s = BKEY_U64s + rnd_below(&seed, 6), .format_nw = KEY_FORMAT_CURRENT,
			.type = rnd_next(&seed), .inode = rnd_next(&seed), .offset = rnd_next(&seed),
			.snapshot = rnd_next(&seed), .size = rnd_next(&seed),
			.version_hi = rnd_next(&seed), .version_lo = rnd_next(&seed),
		}, back;
		char *buf = NULL, err[200];
		size_t len = 0;
		unsigned j;
		FILE *f;

		for (j = 0; j + BKEY_U64s < k.u64s; j++)
			val[j] = rnd_next(&seed);
		f = open_memstream(&buf, &len);
		bk_key_print(f, &k, val);
		fclose(f);
		if (!ASSERT_EQ(bk_key_parse(buf, &back, back_val, err, sizeof(err)), 1, buf) ||
		    !ASSERT_MEMEQ(&back, &k, sizeof(k), "key") ||
		    !ASSERT_MEMEQ(back_val, val, 8 * (k.u64s - BKEY_U64s), "value")) {
			free(buf);
			return;
		}
		free(buf);
	}
}

static void defaults_and_blank(void)
{
	struct bkey k;
	uint64_t val[4];
	char err[200];

	ASSERT_EQ(bk_key_parse("  \n", &k, val, err, sizeof(err)), 0, "blank");
	ASSERT_EQ(bk_key_parse("# a comment\n", &k, val, err, sizeof(err)), 0, "comment");
	ASSERT_EQ(bk_key_parse("1:2:3\n", &k, val, err, sizeof(err)), 1, "position only");
	ASSERT_EQ(k.u64s, 5, "no value");
	ASSERT_EQ(k.size | k.type | k.version_hi | k.version_lo, 0, "defaults 0");
	ASSERT_EQ(bk_key_parse("1:2:3 val=0102030405060708 type=6", &k, val, err, sizeof(err)), 1,
		  "any order");
	ASSERT_EQ(k.u64s, 6, "one value word");
	ASSERT_EQ(val[0], 0x0807060504030201ULL, "memory order");
}

static void refusals(void)
{
	static const struct { const char *line, *msg; } bad[] = {
		{ "1:2", "expected inode:offset:snapshot" },
		{ "1:2:4294967296", "snapshot: number too large" },
		{ "18446744073709551616:0:0", "inode: number too large" },
		{ "0x10:0:0", "position: expected inode:offset:snapshot" },
		{ "1:2:3x", "position: unexpected \"x\"" },
		{ "-1:0:0", "inode: expected a decimal number" },
		{ "1:2:3 size=4294967296", "size: number too large" },
		{ "1:2:3 type=256", "type: number too large" },
		{ "1:2:3 ver=5", "ver: expected HI:LO" },
		{ "1:2:3 val=0102", "2 bytes is not a whole number of 8-byte words" },
		{ "1:2:3 val=zz00000000000000", "is not hex bytes" },
		{ "1:2:3 colour=red", "unknown field \"colour=red\"" },
		{ "1:2:3 size=1 size=2", "given twice" },
		{ "1:2:3 size=1x", "unexpected \"x\"" },
	};
	unsigned i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct bkey k;
		uint64_t val[BKEY_VAL_U64s_MAX];
		char err[200] = "";

		ASSERT_EQ(bk_key_parse(bad[i].line, &k, val, err, sizeof(err)), -EINVAL, bad[i].line);
		ASSERT_HAS_SUBSTR(err, bad[i].msg, bad[i].line);
	}
	{
		char line[8 * 251 * 2 + 16], err[200];
		struct bkey k;
		uint64_t val[BKEY_VAL_U64s_MAX];

		strcpy(line, "1:2:3 val=");
		memset(line + strlen(line), 'a', 8 * 251 * 2);
		line[10 + 8 * 251 * 2] = 0;
		ASSERT_EQ(bk_key_parse(line, &k, val, err, sizeof(err)), -EINVAL, "251 words");
		ASSERT_HAS_SUBSTR(err, "longer than 250 words", "names the limit");
	}
}

static void files(void)
{
	const char *text = "# keys\n5:10:1 size=8\n\n1:2:3 val=0100000000000000\n";
	struct bk_keyset ks = {};
	char err[200] = "";
	FILE *f = fmemopen((void *)text, strlen(text), "r");

	if (ASSERT_OK(bk_keyset_read(f, &ks, err, sizeof(err)), err)) {
		ASSERT_EQ(ks.nr, 2, "two keys");
		ASSERT_EQ(ks.keys[0].k.inode, 1, "sorted");
		ASSERT_EQ(ks.keys[0].line, 4, "line of the first");
		ASSERT_EQ(bk_keyset_val(&ks, &ks.keys[0])[0], 1, "its value");
	}
	fclose(f);
	bk_keyset_free(&ks);

	text = "1:2:3\n4:5:6\n1:2:3 size=9\n";
	f = fmemopen((void *)text, strlen(text), "r");
	ASSERT_EQ(bk_keyset_read(f, &ks, err, sizeof(err)), -EINVAL, "duplicate");
	ASSERT_HAS_SUBSTR(err, "line 1 and line 3", "names both lines");
	fclose(f);
	bk_keyset_free(&ks);

	text = "1:2:3\n4:5\n";
	f = fmemopen((void *)text, strlen(text), "r");
	ASSERT_EQ(bk_keyset_read(f, &ks, err, sizeof(err)), -EINVAL, "bad line");
	ASSERT_HAS_SUBSTR(err, "line 2:", "names the line");
	fclose(f);
	bk_keyset_free(&ks);
}

static void queries(void)
{
	struct bpos p;
	char err[200];

	ASSERT_OK(bk_pos_parse("7:8:9\n", &p, err, sizeof(err)), "query");
	ASSERT_EQ(p.inode + p.offset + p.snapshot, 24, "values");
	ASSERT_EQ(bk_pos_parse("7:8:9 size=1", &p, err, sizeof(err)), -EINVAL, "trailing");
	ASSERT_HAS_SUBSTR(err, "trailing", "says trailing");
	ASSERT_EQ(bk_pos_parse("7:8", &p, err, sizeof(err)), -EINVAL, "short");
}

DEFINE_TEST(keytext)
{
	if (test__start_subtest("round_trip"))
		round_trip();
	if (test__start_subtest("defaults_and_blank"))
		defaults_and_blank();
	if (test__start_subtest("refusals"))
		refusals();
	if (test__start_subtest("files"))
		files();
	if (test__start_subtest("queries"))
		queries();
}
