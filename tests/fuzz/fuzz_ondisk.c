// SPDX-License-Identifier: GPL-2.0
/*
 * bcachefs's on-disk parsers (bkey/ondisk.c, user/image.c's merge) on
 * hostile bytes.  Checksums would stop nearly every input at the door,
 * so the harness fixes them up first and the parsers behind them run:
 *
 *   - the input as a btree node at sector 8 of an image, each bset's
 *     CRC-32C recomputed along the node's own framing, read through a
 *     pointer built from its header; if it reads, its keys are merged,
 *     and an interior node's keys are parsed as btree pointers;
 *   - the input as a superblock at byte 4096, its CRC-32C recomputed:
 *     fields, members, the clean section and its btree roots.
 *
 * Seeds: real nodes from ../shared/data/bcachefs/nodes where present.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image.h"

#define NODE_BYTES	4096u
#define BLOCK		512u
#define MAGIC		0x9b58a66d38c0e409ULL

static unsigned long nodes_read, keys_merged, ptrs_parsed, sbs_read;

static void report(void)
{
	fprintf(stderr, "fuzz_ondisk: %lu nodes read, %lu live keys merged, %lu btree pointers "
		"parsed, %lu superblocks read\n", nodes_read, keys_merged, ptrs_parsed, sbs_read);
}

static void put_csum(uint8_t *p, const uint8_t *from, size_t len)
{
	uint32_t c = ~bch_crc32c(~0u, from, len);

	memset(p, 0, 16);
	memcpy(p, &c, 4);
}

/* Recomputes each bset's checksum along the framing bch_node_read follows. */
static void fix_node(uint8_t *n, size_t written)
{
	uint64_t seq, s;
	uint16_t u64s;
	size_t off, end;

	memcpy(&u64s, n + 158, 2);
	end = 160 + 8 * (size_t)u64s;
	if (end > written)
		return;
	put_csum(n, n + 16, end - 16);
	memcpy(&seq, n + 136, 8);
	for (off = (end + BLOCK - 1) / BLOCK * BLOCK; off + 40 <= written;) {
		memcpy(&s, n + off + 16, 8);
		memcpy(&u64s, n + off + 38, 2);
		end = off + 40 + 8 * (size_t)u64s;
		if (s != seq || end > written)
			return;
		put_csum(n + off, n + off + 16, end - off - 16);
		off = (end + BLOCK - 1) / BLOCK * BLOCK;
	}
}

static void node_case(const uint8_t *data, size_t size)
{
	size_t img_size = 8 * BLOCK + NODE_BYTES;
	uint8_t *img = calloc(1, img_size), *n = img + 8 * BLOCK;
	struct bch_sb_info sb = { .block_bytes = BLOCK, .node_bytes = NODE_BYTES,
				  .bucket_sectors = 256, .version = 27, .node_magic = MAGIC };
	struct bch_btree_ptr p = { .sector = 8 };
	struct bch_node node;
	char err[512];
	uint64_t flags;

	memcpy(n, data, size < NODE_BYTES ? size : NODE_BYTES);
	memcpy(n + 16, &(uint64_t){ MAGIC }, 8);
	p.sectors_written = size >= NODE_BYTES ? NODE_BYTES / BLOCK : (size + BLOCK - 1) / BLOCK;
	if (!p.sectors_written)
		p.sectors_written = 1;
	fix_node(n, (size_t)p.sectors_written * BLOCK);
	/* the pointer agrees with the header: the parser checks the rest */
	memcpy(&flags, n + 24, 8);
	memcpy(&p.seq, n + 136, 8);
	memcpy(&p.min_key.snapshot, n + 32, 4);
	memcpy(&p.min_key.offset, n + 36, 8);
	memcpy(&p.min_key.inode, n + 44, 8);
	memcpy(&p.max_key.snapshot, n + 52, 4);
	memcpy(&p.max_key.offset, n + 56, 8);
	memcpy(&p.max_key.inode, n + 64, 8);
	if (!bch_node_read(&sb, img, img_size, &p, BCH_NODE_ID(flags), BCH_NODE_LEVEL(flags),
			   &node, err, sizeof(err))) {
		struct bk_img_key *keys;
		size_t nr, i;

		nodes_read++;
		if (!bk_node_merge(&node, &keys, &nr)) {
			keys_merged += nr;
			for (i = 0; i < nr; i++) {
				struct bch_btree_ptr child;
				unsigned kw = bkey_key_words(&node.f, keys[i].raw);
				uint64_t val[BKEY_U64s_MAX];

				if (i && bpos_cmp(bkey_pos(&keys[i - 1].k),
						  bkey_pos(&keys[i].k)) >= 0)
					__builtin_trap();	/* merged keys are sorted, unique */
				memcpy(val, keys[i].raw + 8 * kw, 8 * (keys[i].k.u64s - BKEY_U64s));
				ptrs_parsed += !bch_ptr_parse(&keys[i].k, val, &child, err,
							      sizeof(err));
			}
			free(keys);
		}
		bch_node_free(&node);
	}
	free(img);
}

static void sb_case(const uint8_t *data, size_t size)
{
	size_t img_size = 4096 + size, bytes;
	uint8_t *img = calloc(1, img_size), *s = img + 4096;
	struct bch_sb_info sb;
	char err[512];
	uint32_t u64s;

	memcpy(s, data, size);
	if (size >= 752) {
		memcpy(&u64s, s + 124, 4);
		bytes = 752 + 8 * (size_t)u64s;
		if (bytes <= size)
			put_csum(s, s + 16, bytes - 16);
	}
	sbs_read += !bch_sb_read(img, img_size, &sb, err, sizeof(err));
	free(img);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool once;

	if (!once) {
		once = true;
		atexit(report);
	}
	if (size > 2 * NODE_BYTES)
		return 0;
	node_case(data, size);
	sb_case(data, size);
	return 0;
}
