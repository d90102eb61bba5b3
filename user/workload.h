/* SPDX-License-Identifier: GPL-2.0 */
#ifndef USER_WORKLOAD_H
#define USER_WORKLOAD_H

#include "keytext.h"

struct bk_workload {
	uint64_t		seed;
	struct bk_keyset	inodes, extents, dirents;
	uint64_t		last_file;	/* while building */
};

/* About @nr_keys keys in all (10% inodes, 20% dirents, the rest extents). */
int bk_workload_build(struct bk_workload *w, size_t nr_keys, uint64_t seed);
void bk_workload_free(struct bk_workload *w);

#endif
