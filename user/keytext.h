/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The key text format of the loader's interfaces, one key per line:
 *
 *   inode:offset:snapshot size=N type=T ver=HI:LO val=HEX
 *
 * Numbers are decimal.  size, type, ver and val are optional (0, 0, 0:0,
 * no value); val is hex bytes, a whole number of 8-byte words (at most
 * 250).  Blank lines and lines starting with '#' are skipped.
 */
#ifndef USER_KEYTEXT_H
#define USER_KEYTEXT_H

#include <stdio.h>

#include "bkey.h"

/* A key with its value: k.u64s = 5 + value words, in the set's pool. */
struct bk_keyval {
	struct bkey	k;
	size_t		val_idx;	/* first value word in the pool */
	unsigned	line;		/* where it was read, for messages */
};

struct bk_keyset {
	struct bk_keyval *keys;
	size_t		nr, cap;
	uint64_t	*pool;		/* value words */
	size_t		pool_nr, pool_cap;
};

static inline const uint64_t *bk_keyset_val(const struct bk_keyset *ks,
					    const struct bk_keyval *kv)
{
	return ks->pool + kv->val_idx;
}

/* Parses one line; returns 1 for a key, 0 for a blank/comment line, or
 * -EINVAL with a message (without the line number) in @err. */
int bk_key_parse(const char *line, struct bkey *k, uint64_t *val, char *err, size_t errlen);
/* Parses "inode:offset:snapshot" (and nothing else). */
int bk_pos_parse(const char *s, struct bpos *p, char *err, size_t errlen);
void bk_key_print(FILE *out, const struct bkey *k, const uint64_t *val);

/*
 * Reads a key file: every key parsed, then sorted by position.  A bad line
 * or two keys at one position gives -EINVAL and "LINE N: ..." in @err.
 */
int bk_keyset_read(FILE *in, struct bk_keyset *ks, char *err, size_t errlen);
void bk_keyset_free(struct bk_keyset *ks);
/* Adds a key (its value copied); for generated key sets. */
int bk_keyset_add(struct bk_keyset *ks, const struct bkey *k, const uint64_t *val);
/* Sorts by position; -EINVAL with both lines in @err on a duplicate. */
int bk_keyset_sort(struct bk_keyset *ks, char *err, size_t errlen);
/* Sorts by position, keeping one key of each position. */
int bk_keyset_sort_dedup(struct bk_keyset *ks);

#endif
