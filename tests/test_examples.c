// SPDX-License-Identifier: GPL-2.0
/*
 * The spec's worked examples (section 12), each as a subtest, checked
 * against the model.  Kernel-side checks of the same examples live in
 * test_gen.c.
 */
#include "test_progs.h"
#include "bkey.h"
#include "examples.h"

static void check_format_bytes(const struct bkey_format *f, const char *hex)
{
	uint8_t want[56] = {};

	test_hex(hex, want, sizeof(want));
	ASSERT_MEMEQ(f, want, sizeof(want), "format bytes");
}

static void check_pack(const struct bkey_format *f, const struct bkey *k,
		       const char *packed_hex)
{
	uint64_t w[5] = {};
	uint8_t want[40] = {};
	size_t n = test_hex(packed_hex, want, sizeof(want));
	struct bkey back;

	if (!ASSERT_OK(bkey_pack_key(f, k, w, NULL), "pack"))
		return;
	ASSERT_EQ(n, 8 * f->key_u64s, "packed length");
	ASSERT_MEMEQ(w, want, n, "packed bytes");
	bkey_unpack_key(f, w, &back);
	ASSERT_MEMEQ(&back, k, sizeof(back), "unpack(pack(k)) == k");
}

static void example1(void)
{
	struct bkey k = ex_key(0x1122334455667788, 0x99aabbccddeeff00, 0xdeadbeef,
			       0x10, 0x01020304, 0x0a0b0c0d0e0f1011, 7, 6);
	uint8_t want[40];

	k.format_nw |= 0x80;
	test_hex("07 81 06 00 | 11 10 0f 0e 0d 0c 0b 0a | 04 03 02 01 | 10 00 00 00 |"
		 " ef be ad de | 00 ff ee dd cc bb aa 99 | 88 77 66 55 44 33 22 11", want, 40);
	ASSERT_MEMEQ(&k, want, 40, "unpacked layout");
}

static void example2(void)
{
	struct bkey_format f = ex2_format();
	struct bkey_byte_aligned ba;
	struct bkey k = ex_key(0x1000, 0x20, 0xffffffff, 8, 0, 0, 8, 6);
	uint8_t want[40];
	uint64_t w[2];

	check_format_bytes(&f, "02 06 00 08 20 08 00 00 00 10 00 00 00 00 00 00");
	ASSERT_OK(bkey_format_validate(&f, NULL), "valid");
	test_hex("0801060000000000000000000000000008000000ffffffff20000000000000000010000000000000",
		 want, 40);
	ASSERT_MEMEQ(&k, want, 40, "unpacked bytes");
	check_pack(&f, &k, "05 00 06 00 00 00 00 00 00 00 08 ff ff ff ff 20");
	bkey_pack_key(&f, &k, w, NULL);
	ASSERT_EQ(w[0], 0x0000000000060005ULL, "w0");
	ASSERT_EQ(w[1], 0x20ffffffff080000ULL, "w1");

	if (!ASSERT_TRUE(bkey_format_byte_aligned(&f, &ba), "byte aligned"))
		return;
	ASSERT_EQ(ba.byte_offset[1], 8, "offset byte_offset");
	ASSERT_EQ(ba.shift[1], 56, "offset shift");
	ASSERT_EQ(ba.byte_offset[2], 7, "snapshot byte_offset");
	ASSERT_EQ(ba.shift[2], 32, "snapshot shift");
	ASSERT_EQ(ba.byte_offset[3], 3, "size byte_offset");
	ASSERT_EQ(ba.shift[3], 56, "size shift");
	ASSERT_EQ((uint8_t)ba.byte_offset[0], (uint8_t)BKEY_BA_SENTINEL, "inode sentinel");
	ASSERT_EQ((uint8_t)ba.byte_offset[4], (uint8_t)BKEY_BA_SENTINEL, "ver_hi sentinel");
}

static void example3(void)
{
	struct bkey_format f = ex3_format();
	struct bkey k = ex_key(0xaccde12345, 0x123456789a, 0xffffffff, 0xabc, 0, 0, 7, 6);
	struct bkey_byte_aligned ba;
	uint64_t w[2];

	check_format_bytes(&f, "02 06 28 28 00 0c 00 00 | 00 00 00 00 01 00 00 00 | 00 00 00 00 00 00 00 00 |"
			   " ff ff ff ff 00 00 00 00");
	ASSERT_OK(bkey_format_validate(&f, NULL), "valid");
	ASSERT_EQ(bkey_field_shift(&f, 0), 88, "inode shift");
	ASSERT_EQ(bkey_field_shift(&f, 1), 48, "offset shift");
	ASSERT_EQ(bkey_field_shift(&f, 3), 36, "size shift");
	check_pack(&f, &k, "04 00 06 00 c0 ab 9a 78 56 34 12 45 23 e1 cd ab");
	bkey_pack_key(&f, &k, w, NULL);
	ASSERT_EQ(w[0], 0x789aabc000060004ULL, "w0");
	ASSERT_EQ(w[1], 0xabcde12345123456ULL, "w1");
	ASSERT_TRUE(bkey_format_byte_aligned(&f, &ba), "still byte aligned");
}

static void example4(void)
{
	struct bkey_format f = ex4_format();
	struct bkey k = ex_key(0x1042, 0xfedcba9876543210, 0, 0, 0, 0x41, 9, 10);
	uint8_t want[40];
	uint64_t w[2];
	struct bkey out;

	ASSERT_OK(bkey_format_validate(&f, NULL), "valid");
	check_pack(&f, &k, "06 00 0a 00 00 00 01 10 32 54 76 98 ba dc fe 42");
	bkey_pack_key(&f, &k, w, NULL);
	ASSERT_EQ(w[0], 0x10010000000a0006ULL, "w0");
	ASSERT_EQ(w[1], 0x42fedcba98765432ULL, "w1");
	bkey_unpack_key(&f, w, &out);
	test_hex("09010a0041000000000000000000000000000000000000001032547698badcfe4210000000000000",
		 want, 40);
	ASSERT_MEMEQ(&out, want, 40, "unpacked");
}

static void example5(void)
{
	struct bkey_format_state s;
	struct bkey k = ex_key(77, 1234, 1, 0, 0, 0, 6, 8), out;
	struct bkey_format f;
	uint8_t want[40];
	uint64_t w[1];

	bkey_format_init(&s);
	bkey_format_add_pos(&s, (struct bpos){ 77, 1234, 1 });
	bkey_format_add_pos(&s, (struct bpos){ 77, 1234, 1 });
	bkey_format_add_key(&s, &k);
	f = bkey_format_done(&s, BKEY_FORMAT_ERA_CURRENT);
	check_format_bytes(&f, "01 06 00 00 00 00 00 00 | 4d 00 00 00 00 00 00 00 |"
			   " d2 04 00 00 00 00 00 00 | 01 00 00 00 00 00 00 00");
	check_pack(&f, &k, "02 00 08 00 00 00 00 00");
	bkey_pack_key(&f, &k, w, NULL);
	bkey_unpack_key(&f, w, &out);
	test_hex("060108000000000000000000000000000000000001000000d2040000000000004d00000000000000",
		 want, 40);
	ASSERT_MEMEQ(&out, want, 40, "unpacked");
	ASSERT_EQ(bkey_format_nr_key_bits(&f), 0, "nr_key_bits");
}

static void example6(void)
{
	struct bkey_format f = ex2_format();
	struct bkey_pack_err err;
	uint64_t w[2];
	struct bkey k;

	k = ex_key(0xfff, 0x20, 0xffffffff, 8, 0, 0, 8, 6);
	ASSERT_ERR(bkey_pack_key(&f, &k, w, &err), "inode below offset fails");
	ASSERT_EQ(err.why, BKEY_PACK_BELOW_OFFSET, "reason");
	ASSERT_EQ(err.field, BKEY_FIELD_INODE, "field");

	k = ex_key(0x1000, 0x100, 0xffffffff, 8, 0, 0, 8, 6);
	ASSERT_ERR(bkey_pack_key(&f, &k, w, &err), "offset too wide fails");
	ASSERT_EQ(err.why, BKEY_PACK_TOO_WIDE, "reason");
	ASSERT_EQ(err.field, BKEY_FIELD_OFFSET, "field");

	k = ex_key(0x1000, 0x20, 0xffffffff, 0x100, 0, 0, 8, 6);
	ASSERT_ERR(bkey_pack_key(&f, &k, w, &err), "size too wide fails");
	ASSERT_EQ(err.why, BKEY_PACK_TOO_WIDE, "reason");
	ASSERT_EQ(err.field, BKEY_FIELD_SIZE, "field");
}

static void example7(void)
{
	struct bkey_format f7 = ex7_format(BKEY_FORMAT_ERA_CURRENT);
	struct bkey_format f23 = ex7_format(BKEY_FORMAT_ERA_2023);
	struct bkey k = ex_key(0x2a, 0x1111, 0xfffffff2, 0x80, 0, 0x5001, 6, 8);
	struct bkey_byte_aligned ba;
	uint64_t w[1];

	check_format_bytes(&f7, "01060810040800032a000000000000000010000000000000"
			   "f0ffffff00000000000000000000000000000000000000000050000000000000");
	ASSERT_OK(bkey_format_validate(&f7, NULL), "valid");
	check_pack(&f7, &k, "02 00 08 02 28 11 01 00");
	bkey_pack_key(&f7, &k, w, NULL);
	ASSERT_EQ(w[0], 0x0001112802080002ULL, "word");
	ASSERT_FALSE(bkey_format_byte_aligned(&f7, &ba), "not byte aligned");

	check_format_bytes(&f23, "0106080d040c00032a000000000000000010000000000000"
			   "f0ffffff00000000000000000000000000000000000000000050000000000000");
	ASSERT_OK(bkey_format_validate(&f23, NULL), "2023 rule valid");
}

static void example8(void)
{
	struct bkey_format_state s;
	struct bkey_format f;
	unsigned j;

	bkey_format_init(&s);
	bkey_format_add_pos(&s, (struct bpos){ 0x1234, 0, 0xfffffff1 });
	bkey_format_add_pos(&s, (struct bpos){ 0x1234, 0x200, 0xffffffff });
	for (j = 0; j < 15; j++) {
		struct bkey k = ex_key(0x1234, 0x10 * j, 0xfffffff1 + j, 0, 0, 0, 5, 1);

		bkey_format_add_key(&s, &k);
	}
	f = bkey_format_done(&s, BKEY_FORMAT_ERA_CURRENT);
	check_format_bytes(&f, "01060010080000003412000000000000000000000000000000ffffff00000000");
	{
		struct bkey k = ex_key(0x1234, 0x30, 0xfffffff4, 0, 0, 0, 5, 1);

		check_pack(&f, &k, "01 00 01 00 00 f4 30 00");
	}
}

static void example9(void)
{
	static const struct {
		struct bpos		pos;
		enum bkey_pack_pos_ret	ret;
		const char		*hex;
		struct bpos		decoded;
	} cases[] = {
		{ { 0x100000005, 0x4d, 0xffffffff }, BKEY_PACK_POS_EXACT,
		  "0200000000004d000000000500000000", { 0x100000005, 0x4d, 0xffffffff } },
		{ { 0x100000005, 0x4d, 3 }, BKEY_PACK_POS_SMALLER,
		  "0200000000004c000000000500000000", { 0x100000005, 0x4c, 0xffffffff } },
		{ { 0x100000005, 1ULL << 40, 0xffffffff }, BKEY_PACK_POS_SMALLER,
		  "020000000000ffffffffff0500000000", { 0x100000005, 0xffffffffff, 0xffffffff } },
		{ { 0x100000005, 0, 0 }, BKEY_PACK_POS_SMALLER,
		  "020000000000ffffffffff0400000000", { 0x100000004, 0xffffffffff, 0xffffffff } },
		{ { 0x100000000, 0, 0 }, BKEY_PACK_POS_FAIL, NULL, {} },
		{ { 0x30000000000, 5, 0xffffffff }, BKEY_PACK_POS_SMALLER,
		  "020000000000ffffffffffffffffffff", { 0x100ffffffff, 0xffffffffff, 0xffffffff } },
		{ { 5, 5, 5 }, BKEY_PACK_POS_FAIL, NULL, {} },
	};
	struct bkey_format f = ex3_format();
	unsigned i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t w[2];
		uint8_t want[16];
		struct bpos got;

		ASSERT_EQ(bkey_pack_pos_lossy(&f, cases[i].pos, w), cases[i].ret, "lossy result");
		if (!cases[i].hex)
			continue;
		test_hex(cases[i].hex, want, 16);
		ASSERT_MEMEQ(w, want, 16, "lossy packed bytes");
		got = bkey_unpack_pos(&f, w);
		ASSERT_EQ(bpos_cmp(got, cases[i].decoded), 0, "decodes to");
	}
	{
		uint64_t w[2];

		ASSERT_OK(bkey_pack_pos(&f, (struct bpos){ 0x100000005, 0x4d, 0xffffffff }, w),
			  "exact pack_pos");
		ASSERT_ERR(bkey_pack_pos(&f, (struct bpos){ 0x100000005, 0x4d, 3 }, w),
			   "exact pack_pos fails below offset");
	}
}

static void example10(void)
{
	struct bkey_format f = ex3_format();
	struct bkey a = ex_key(0x100000007, 0xffff, 0xffffffff, 0x10, 0, 0, 5, 6);
	struct bkey b = ex_key(0x100000007, 0x10000, 0xffffffff, 8, 0, 0, 6, 6);
	struct bkey c = ex_key(0x100000006, 0xffffffffff, 0xffffffff, 0xfff, 0, 0, 5, 6);
	uint64_t pa[2], pb[2], pc[2];
	uint8_t want[16];

	ASSERT_EQ(bkey_format_nr_key_bits(&f), 80, "nr_key_bits");
	bkey_pack_key(&f, &a, pa, NULL);
	bkey_pack_key(&f, &b, pb, NULL);
	bkey_pack_key(&f, &c, pc, NULL);
	test_hex("020006000001ffff0000000700000000", want, 16);
	ASSERT_MEMEQ(pa, want, 16, "A packed");
	test_hex("03000600800000000100000700000000", want, 16);
	ASSERT_MEMEQ(pb, want, 16, "B packed");
	test_hex("02000600f0ffffffffffff0600000000", want, 16);
	ASSERT_MEMEQ(pc, want, 16, "C packed");

	ASSERT_EQ(bkey_cmp_packed(&f, pa, pb), -1, "cmp(A,B)");
	ASSERT_EQ(bkey_cmp_packed(&f, pb, pa), 1, "cmp(B,A)");
	ASSERT_EQ(bkey_greatest_differing_bit(&f, pa, pb), 16, "gdb(A,B)");
	ASSERT_EQ(bkey_cmp_packed(&f, pc, pa), -1, "cmp(C,A)");
	ASSERT_EQ(bkey_greatest_differing_bit(&f, pc, pa), 40, "gdb(C,A)");
	ASSERT_EQ(bkey_cmp_packed(&f, pa, pa), 0, "cmp(A,A)");

	ASSERT_TRUE(bkey_packed_successor(&f, pa), "succ(A)");
	test_hex("02000600000100000100000700000000", want, 16);
	ASSERT_MEMEQ(pa, want, 16, "successor(A)");
	ASSERT_TRUE(bkey_packed_successor(&f, pc), "succ(C)");
	test_hex("02000600f0ff00000000000700000000", want, 16);
	ASSERT_MEMEQ(pc, want, 16, "successor(C)");
}

static void example11(void)
{
	struct bkey_format f = ex11_format();
	struct bkey k = ex_key(0x56, 0x180, 0, 0x100, 0, 0, 7, 6);

	ASSERT_OK(bkey_format_validate(&f, NULL), "valid");
	check_pack(&f, &k, "03 00 06 00 01 80 00 01");
}

static void current_format(void)
{
	struct bkey_format f = bkey_format_current;
	struct bkey k = ex_key(0x1122334455667788, 0x99aabbccddeeff00, 0xdeadbeef,
			       0x10, 0x01020304, 0x0a0b0c0d0e0f1011, 7, 6);
	uint64_t w[5];

	check_format_bytes(&f, "05 06 40 40 20 20 20 40");
	ASSERT_OK(bkey_format_validate(&f, NULL), "valid");
	ASSERT_EQ(bkey_format_nr_key_bits(&f), 160, "nr_key_bits");
	ASSERT_OK(bkey_pack_key(&f, &k, w, NULL), "pack");
	/* identical to struct bkey except the format byte */
	ASSERT_EQ(((uint8_t *)w)[1], 0, "format byte 0");
	((uint8_t *)w)[1] = 1;
	ASSERT_MEMEQ(w, &k, 40, "same bytes as struct bkey");
}

DEFINE_TEST(spec_examples)
{
	if (test__start_subtest("ex1_unpacked_layout"))
		example1();
	if (test__start_subtest("ex2_computed_byte_aligned"))
		example2();
	if (test__start_subtest("ex3_straddle"))
		example3();
	if (test__start_subtest("ex4_64bit_straddle"))
		example4();
	if (test__start_subtest("ex5_all_zero_width"))
		example5();
	if (test__start_subtest("ex6_pack_failures"))
		example6();
	if (test__start_subtest("ex7_greedy_rounding"))
		example7();
	if (test__start_subtest("ex8_rounding_lowers_offset"))
		example8();
	if (test__start_subtest("ex9_lossy_pos"))
		example9();
	if (test__start_subtest("ex10_packed_cmp"))
		example10();
	if (test__start_subtest("ex11_no_start_offset_rule"))
		example11();
	if (test__start_subtest("current_format"))
		current_format();
}
