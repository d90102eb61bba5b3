/* SPDX-License-Identifier: GPL-2.0 */
/* The spec's example formats and keys, shared by model and kernel tests. */
#ifndef TESTS_EXAMPLES_H
#define TESTS_EXAMPLES_H

#include "bkey.h"

static inline struct bkey ex_key(uint64_t inode, uint64_t offset, uint32_t snapshot,
				 uint32_t size, uint32_t vhi, uint64_t vlo,
				 uint8_t u64s, uint8_t type)
{
	struct bkey k = {
		.u64s = u64s, .format_nw = KEY_FORMAT_CURRENT, .type = type,
		.version_lo = vlo, .version_hi = vhi, .size = size,
		.snapshot = snapshot, .offset = offset, .inode = inode,
	};
	return k;
}

/* Example 2: computed from min/max and 16 extents. */
static inline struct bkey_format ex2_format(void)
{
	struct bkey_format_state s;
	unsigned j;

	bkey_format_init(&s);
	bkey_format_add_pos(&s, (struct bpos){ 0x1000, 0, 0 });
	bkey_format_add_pos(&s, (struct bpos){ 0x1000, 200, 0xffffffff });
	for (j = 0; j < 16; j++) {
		struct bkey k = ex_key(0x1000, 0x10 + 8 * j, 0xffffffff, 8, 0, 0, 8, 6);

		bkey_format_add_key(&s, &k);
	}
	return bkey_format_done(&s, BKEY_FORMAT_ERA_CURRENT);
}

static inline struct bkey_format ex3_format(void)
{
	struct bkey_format f = {
		.key_u64s = 2, .nr_fields = 6, .bits_per_field = { 40, 40, 0, 12, 0, 0 },
		.field_offset = { 0x100000000, 0, 0xffffffff, 0, 0, 0 },
	};
	return f;
}

static inline struct bkey_format ex4_format(void)
{
	struct bkey_format f = {
		.key_u64s = 2, .nr_fields = 6, .bits_per_field = { 8, 64, 0, 0, 0, 8 },
		.field_offset = { 0x1000, 0, 0, 0, 0, 0x40 },
	};
	return f;
}

/* Example 7: greedy rounding with a lowered snapshot offset. */
static inline struct bkey_format ex7_format(enum bkey_format_era era)
{
	struct bkey_format_state s;
	unsigned j;

	bkey_format_init(&s);
	bkey_format_add_pos(&s, (struct bpos){ 0x2a, 0x1000, 0xfffffff1 });
	bkey_format_add_pos(&s, (struct bpos){ 0x2b, 0x2000, 0xffffffff });
	for (j = 0; j < 5; j++) {
		struct bkey k = ex_key(0x2a, 0x1000 + 0x111 * j, 0xfffffff1 + j % 3,
				       0x80, 0, 0x5000 + j, 6, 8);

		bkey_format_add_key(&s, &k);
	}
	return bkey_format_done(&s, era);
}

static inline struct bkey_format ex11_format(void)
{
	struct bkey_format f = {
		.key_u64s = 1, .nr_fields = 6, .bits_per_field = { 8, 16, 0, 16, 0, 0 },
		.field_offset = { 0x55, 0x100, 0, 0, 0, 0 },
	};
	return f;
}

#endif /* TESTS_EXAMPLES_H */
