// SPDX-License-Identifier: GPL-2.0
/*
 * The built-in workload: a filesystem-like key set with a fixed seed, as
 * bcachefs keeps it in three btrees.
 *   inodes:  position 0:inum:U32_MAX, inode_v3 values of 8-15 words;
 *   extents: position inum:end:U32_MAX (an extent's position is its end),
 *            size in 512-byte sectors; most files 1-3 extents, some tens,
 *            a few hundreds; values 3-5 words (pointer, checksum);
 *   dirents: position dir:hash:U32_MAX with 64-bit name hashes; values of
 *            2-6 words (target inode, name).
 */
#include <errno.h>
#include <string.h>

#include "workload.h"
#include "util.h"

#define KEY_TYPE_extent		6
#define KEY_TYPE_inode_v3	29
#define KEY_TYPE_dirent		9

static int add(struct bk_keyset *ks, uint64_t inode, uint64_t offset, uint32_t size,
	       uint8_t type, unsigned val_words, uint64_t *seed)
{
	uint64_t val[16];
	struct bkey k = {
		.u64s = BKEY_U64s + val_words, .format_nw = KEY_FORMAT_CURRENT, .type = type,
		.inode = inode, .offset = offset, .snapshot = UINT32_MAX, .size = size,
	};
	unsigned i;

	for (i = 0; i < val_words; i++)
		val[i] = bk_rnd(seed);
	return bk_keyset_add(ks, &k, val);
}

/* Extent lengths: mostly small, a long tail (sectors). */
static uint32_t extent_sectors(uint64_t *seed)
{
	unsigned r = bk_rnd(seed) % 100;

	if (r < 60)
		return 8 * (1 + bk_rnd(seed) % 16);		/* 4-64 KiB */
	if (r < 90)
		return 128 * (1 + bk_rnd(seed) % 16);		/* 64 KiB - 1 MiB */
	return 2048 * (1 + bk_rnd(seed) % 64);			/* 1-64 MiB */
}

static unsigned extents_per_file(uint64_t *seed)
{
	unsigned r = bk_rnd(seed) % 100;

	if (r < 70)
		return 1 + bk_rnd(seed) % 3;
	if (r < 95)
		return 10 + bk_rnd(seed) % 40;
	return 100 + bk_rnd(seed) % 400;
}

int bk_workload_build(struct bk_workload *w, size_t nr_keys, uint64_t seed)
{
	size_t target_inodes = nr_keys / 10, target_dirents = nr_keys / 5;
	size_t target_extents = nr_keys - target_inodes - target_dirents;
	uint64_t inum = 4096, first_inum = inum;
	char err[200];
	size_t i;
	int ret = 0;

	memset(w, 0, sizeof(*w));
	w->seed = seed;
	for (i = 0; i < target_inodes && !ret; i++) {
		inum += 1 + (bk_rnd(&seed) % 8 == 0 ? bk_rnd(&seed) % 64 : 0);
		ret = add(&w->inodes, 0, inum, 0, KEY_TYPE_inode_v3, 8 + bk_rnd(&seed) % 8, &seed);
	}
	/* files get extents; about one inode in ten is a directory */
	while (!ret && w->extents.nr < target_extents) {
		uint64_t file = first_inum + bk_rnd(&seed) % (inum - first_inum + 1);
		uint64_t end = 0;
		unsigned n = extents_per_file(&seed), j;

		if (file % 10 == 0)
			continue;
		/* a file's extents once: skip inodes already given some */
		if (w->extents.nr && file <= w->last_file)
			file = w->last_file + 1 + bk_rnd(&seed) % 16;
		w->last_file = file;
		for (j = 0; j < n && !ret && w->extents.nr < target_extents; j++) {
			uint32_t len = extent_sectors(&seed);

			if (bk_rnd(&seed) % 8 == 0)
				end += extent_sectors(&seed);		/* a hole */
			end += len;
			ret = add(&w->extents, file, end, len, KEY_TYPE_extent,
				  3 + bk_rnd(&seed) % 3, &seed);
		}
	}
	while (!ret && w->dirents.nr < target_dirents) {
		uint64_t dir = first_inum + 10 * (bk_rnd(&seed) % ((inum - first_inum) / 10 + 1));
		unsigned n = 1 + bk_rnd(&seed) % 40, j;

		for (j = 0; j < n && !ret && w->dirents.nr < target_dirents; j++)
			ret = add(&w->dirents, dir, bk_rnd(&seed), 0, KEY_TYPE_dirent,
				  2 + bk_rnd(&seed) % 5, &seed);
	}
	if (ret)
		goto fail;
	/* hash collisions and a repeated directory can repeat a position:
	 * keep the first of each */
	ret = bk_keyset_sort_dedup(&w->inodes) ?: bk_keyset_sort_dedup(&w->extents) ?:
	      bk_keyset_sort_dedup(&w->dirents);
	if (ret)
		goto fail;
	(void)err;
	return 0;
fail:
	bk_workload_free(w);
	return ret;
}

void bk_workload_free(struct bk_workload *w)
{
	bk_keyset_free(&w->inodes);
	bk_keyset_free(&w->extents);
	bk_keyset_free(&w->dirents);
}
