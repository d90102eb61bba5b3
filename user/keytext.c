// SPDX-License-Identifier: GPL-2.0
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "keytext.h"

/* A decimal number in 0..max; advances *s.  No sign, no hex. */
static int parse_dec(const char **s, uint64_t max, uint64_t *v, const char *what,
		     char *err, size_t errlen)
{
	const char *p = *s;
	uint64_t x = 0;

	if (!isdigit((unsigned char)*p)) {
		snprintf(err, errlen, "%s: expected a decimal number at \"%.20s\"", what, p);
		return -EINVAL;
	}
	for (; isdigit((unsigned char)*p); p++) {
		unsigned d = *p - '0';

		if (x > (max - d) / 10) {
			snprintf(err, errlen, "%s: number too large (max %" PRIu64 ")", what, max);
			return -EINVAL;
		}
		x = x * 10 + d;
	}
	*v = x;
	*s = p;
	return 0;
}

static bool at_end_of_token(const char *p)
{
	return !*p || *p == ' ' || *p == '\t' || *p == '\n' || *p == '\r';
}

static int parse_pos(const char **s, struct bpos *pos, char *err, size_t errlen)
{
	uint64_t in, off, snap;

	if (parse_dec(s, UINT64_MAX, &in, "inode", err, errlen))
		return -EINVAL;
	if (**s != ':') {
		snprintf(err, errlen, "position: expected inode:offset:snapshot");
		return -EINVAL;
	}
	(*s)++;
	if (parse_dec(s, UINT64_MAX, &off, "offset", err, errlen))
		return -EINVAL;
	if (**s != ':') {
		snprintf(err, errlen, "position: expected inode:offset:snapshot");
		return -EINVAL;
	}
	(*s)++;
	if (parse_dec(s, UINT32_MAX, &snap, "snapshot", err, errlen))
		return -EINVAL;
	*pos = (struct bpos){ in, off, (uint32_t)snap };
	return 0;
}

int bk_pos_parse(const char *s, struct bpos *p, char *err, size_t errlen)
{
	s += strspn(s, " \t");
	if (parse_pos(&s, p, err, errlen))
		return -EINVAL;
	s += strspn(s, " \t\r\n");
	if (*s) {
		snprintf(err, errlen, "trailing \"%.20s\" after the position", s);
		return -EINVAL;
	}
	return 0;
}

static int hexval(int c)
{
	return isdigit(c) ? c - '0' : isxdigit(c) ? (tolower(c) - 'a' + 10) : -1;
}

/* val=HEX: bytes in memory order, whole words. Returns the word count. */
static int parse_val(const char **s, uint64_t *val, char *err, size_t errlen)
{
	const char *p = *s;
	size_t n = 0;

	while (!at_end_of_token(p)) {
		int hi = hexval((unsigned char)p[0]), lo = hi < 0 ? -1 : hexval((unsigned char)p[1]);

		if (hi < 0 || lo < 0) {
			snprintf(err, errlen, "val: \"%.20s\" is not hex bytes", p);
			return -EINVAL;
		}
		if (n >= 8 * BKEY_VAL_U64s_MAX) {
			snprintf(err, errlen, "val: longer than %u words", BKEY_VAL_U64s_MAX);
			return -EINVAL;
		}
		((uint8_t *)val)[n++] = hi << 4 | lo;
		p += 2;
	}
	if (n % 8) {
		snprintf(err, errlen, "val: %zu bytes is not a whole number of 8-byte words", n);
		return -EINVAL;
	}
	*s = p;
	return n / 8;
}

int bk_key_parse(const char *line, struct bkey *k, uint64_t *val, char *err, size_t errlen)
{
	const char *s = line + strspn(line, " \t");
	bool seen_size = false, seen_type = false, seen_ver = false, seen_val = false;
	struct bpos pos;
	int val_words = 0;

	if (!*s || *s == '\n' || *s == '\r' || *s == '#')
		return 0;
	memset(k, 0, sizeof(*k));
	if (parse_pos(&s, &pos, err, errlen))
		return -EINVAL;
	if (!at_end_of_token(s)) {
		snprintf(err, errlen, "position: unexpected \"%.20s\"", s);
		return -EINVAL;
	}
	k->inode = pos.inode;
	k->offset = pos.offset;
	k->snapshot = pos.snapshot;
	for (;;) {
		uint64_t v, hi;
		bool *seen;

		s += strspn(s, " \t\r\n");
		if (!*s)
			break;
		if (!strncmp(s, "size=", 5)) {
			seen = &seen_size;
			s += 5;
			if (parse_dec(&s, UINT32_MAX, &v, "size", err, errlen))
				return -EINVAL;
			k->size = v;
		} else if (!strncmp(s, "type=", 5)) {
			seen = &seen_type;
			s += 5;
			if (parse_dec(&s, UINT8_MAX, &v, "type", err, errlen))
				return -EINVAL;
			k->type = v;
		} else if (!strncmp(s, "ver=", 4)) {
			seen = &seen_ver;
			s += 4;
			if (parse_dec(&s, UINT32_MAX, &hi, "ver (hi)", err, errlen))
				return -EINVAL;
			if (*s++ != ':') {
				snprintf(err, errlen, "ver: expected HI:LO");
				return -EINVAL;
			}
			if (parse_dec(&s, UINT64_MAX, &v, "ver (lo)", err, errlen))
				return -EINVAL;
			k->version_hi = hi;
			k->version_lo = v;
		} else if (!strncmp(s, "val=", 4)) {
			seen = &seen_val;
			s += 4;
			val_words = parse_val(&s, val, err, errlen);
			if (val_words < 0)
				return -EINVAL;
		} else {
			snprintf(err, errlen, "unknown field \"%.*s\" (want size=, type=, ver=, val=)",
				 (int)strcspn(s, " \t\r\n"), s);
			return -EINVAL;
		}
		if (*seen) {
			snprintf(err, errlen, "a field is given twice");
			return -EINVAL;
		}
		*seen = true;
		if (!at_end_of_token(s)) {
			snprintf(err, errlen, "unexpected \"%.20s\"", s);
			return -EINVAL;
		}
	}
	k->u64s = BKEY_U64s + val_words;
	k->format_nw = KEY_FORMAT_CURRENT;
	return 1;
}

void bk_key_print(FILE *out, const struct bkey *k, const uint64_t *val)
{
	unsigned i, words = k->u64s - BKEY_U64s;

	fprintf(out, "%" PRIu64 ":%" PRIu64 ":%u size=%u type=%u ver=%u:%" PRIu64,
		k->inode, k->offset, k->snapshot, k->size, k->type, k->version_hi, k->version_lo);
	if (words && val) {
		fputs(" val=", out);
		for (i = 0; i < 8 * words; i++)
			fprintf(out, "%02x", ((const uint8_t *)val)[i]);
	}
	fputc('\n', out);
}

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
	size_t n = *cap ? *cap : 1024;
	void *q;

	if (need <= *cap)
		return 0;
	while (n < need)
		n *= 2;
	q = realloc(*p, n * elem);
	if (!q)
		return -ENOMEM;
	*p = q;
	*cap = n;
	return 0;
}

int bk_keyset_add(struct bk_keyset *ks, const struct bkey *k, const uint64_t *val)
{
	unsigned words = k->u64s - BKEY_U64s;

	if (grow((void **)&ks->keys, &ks->cap, ks->nr + 1, sizeof(*ks->keys)) ||
	    grow((void **)&ks->pool, &ks->pool_cap, ks->pool_nr + words + 1, sizeof(*ks->pool)))
		return -ENOMEM;
	memcpy(ks->pool + ks->pool_nr, val, 8 * words);
	ks->keys[ks->nr].k = *k;
	ks->keys[ks->nr].val_idx = ks->pool_nr;
	ks->keys[ks->nr].line = 0;
	ks->pool_nr += words;
	ks->nr++;
	return 0;
}

static int cmp_keyval(const void *a, const void *b)
{
	const struct bkey *x = &((const struct bk_keyval *)a)->k;
	const struct bkey *y = &((const struct bk_keyval *)b)->k;

	return bpos_cmp((struct bpos){ x->inode, x->offset, x->snapshot },
			(struct bpos){ y->inode, y->offset, y->snapshot });
}

int bk_keyset_sort(struct bk_keyset *ks, char *err, size_t errlen)
{
	size_t i;

	if (!ks->nr)
		return 0;	/* qsort's pointer must not be NULL, even for none */
	qsort(ks->keys, ks->nr, sizeof(*ks->keys), cmp_keyval);
	for (i = 1; i < ks->nr; i++)
		if (!cmp_keyval(&ks->keys[i - 1], &ks->keys[i])) {
			snprintf(err, errlen, "line %u and line %u: two keys at %" PRIu64 ":%" PRIu64 ":%u",
				 ks->keys[i - 1].line, ks->keys[i].line, ks->keys[i].k.inode,
				 ks->keys[i].k.offset, ks->keys[i].k.snapshot);
			return -EINVAL;
		}
	return 0;
}

int bk_keyset_sort_dedup(struct bk_keyset *ks)
{
	size_t i, n = 0;

	if (!ks->nr)
		return 0;
	qsort(ks->keys, ks->nr, sizeof(*ks->keys), cmp_keyval);
	for (i = 0; i < ks->nr; i++)
		if (!n || cmp_keyval(&ks->keys[n - 1], &ks->keys[i]))
			ks->keys[n++] = ks->keys[i];
	ks->nr = n;
	return 0;
}

int bk_keyset_read(FILE *in, struct bk_keyset *ks, char *err, size_t errlen)
{
	static uint64_t val[BKEY_VAL_U64s_MAX];
	char *line = NULL, msg[200];
	size_t cap = 0;
	unsigned lineno = 0;
	int ret = 0;

	while (getline(&line, &cap, in) >= 0) {
		struct bkey k;
		int r;

		lineno++;
		r = bk_key_parse(line, &k, val, msg, sizeof(msg));
		if (r < 0) {
			snprintf(err, errlen, "line %u: %s", lineno, msg);
			ret = -EINVAL;
			break;
		}
		if (!r)
			continue;
		ret = bk_keyset_add(ks, &k, val);
		if (ret)
			break;
		ks->keys[ks->nr - 1].line = lineno;
	}
	free(line);
	if (!ret)
		ret = bk_keyset_sort(ks, err, errlen);
	return ret;
}

void bk_keyset_free(struct bk_keyset *ks)
{
	free(ks->keys);
	free(ks->pool);
	memset(ks, 0, sizeof(*ks));
}
