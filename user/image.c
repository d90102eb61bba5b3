// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zstd.h>

#include "image.h"

#define IMAGE_BYTES_MAX		(64ULL << 30)

/* ---- Reading the file ---- */

static int read_all(const char *path, uint8_t **buf, size_t *size, char *err, size_t errlen)
{
	struct stat st;
	size_t done = 0;
	uint8_t *p;
	int fd = open(path, O_RDONLY | O_CLOEXEC), ret = 0;

	if (fd < 0) {
		ret = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(-ret));
		return ret;
	}
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) || (uint64_t)st.st_size > IMAGE_BYTES_MAX) {
		snprintf(err, errlen, "%s: not a regular file of at most %llu bytes", path,
			 IMAGE_BYTES_MAX);
		close(fd);
		return -EINVAL;
	}
	p = malloc(st.st_size ? st.st_size : 1);
	if (!p) {
		close(fd);
		return -ENOMEM;
	}
	while (done < (size_t)st.st_size) {
		ssize_t r = read(fd, p + done, st.st_size - done);

		if (r <= 0) {
			ret = r ? -errno : -EIO;
			snprintf(err, errlen, "%s: read: %s", path, strerror(-ret));
			free(p);
			close(fd);
			return ret;
		}
		done += r;
	}
	close(fd);
	*buf = p;
	*size = done;
	return 0;
}

static int unzstd(const char *path, const uint8_t *in, size_t in_size, uint8_t **buf,
		  size_t *size, char *err, size_t errlen)
{
	unsigned long long hint = ZSTD_getFrameContentSize(in, in_size);
	size_t cap = hint < IMAGE_BYTES_MAX ? hint : 1 << 24, r = 1;
	ZSTD_inBuffer zin = { in, in_size, 0 };
	ZSTD_DStream *ds = ZSTD_createDStream();
	uint8_t *out = malloc(cap ? cap : 1);
	ZSTD_outBuffer zout = { out, cap, 0 };

	if (!ds || !out) {
		ZSTD_freeDStream(ds);
		free(out);
		return -ENOMEM;
	}
	while (zin.pos < zin.size) {
		if (zout.pos == zout.size) {
			uint8_t *p = zout.size * 2 > IMAGE_BYTES_MAX ? NULL :
				     realloc(zout.dst, zout.size * 2);

			if (!p) {
				snprintf(err, errlen, "%s: decompressed image over %llu bytes", path,
					 IMAGE_BYTES_MAX);
				r = 0;
				break;
			}
			zout.dst = p;
			zout.size *= 2;
		}
		r = ZSTD_decompressStream(ds, &zout, &zin);
		if (ZSTD_isError(r)) {
			snprintf(err, errlen, "%s: zstd: %s", path, ZSTD_getErrorName(r));
			break;
		}
	}
	/* r != 0 at the end of the input: the last frame is incomplete */
	if (r && !ZSTD_isError(r))
		snprintf(err, errlen, "%s: zstd: the compressed image is truncated", path);
	ZSTD_freeDStream(ds);
	if (r) {
		free(zout.dst);
		return -EINVAL;
	}
	*buf = zout.dst;
	*size = zout.pos;
	return 0;
}

int bk_image_read_file(const char *path, uint8_t **buf, size_t *size, char *err, size_t errlen)
{
	static const uint8_t zstd_magic[4] = { 0x28, 0xb5, 0x2f, 0xfd };
	uint8_t *raw = NULL;
	size_t raw_size = 0;
	int ret = read_all(path, &raw, &raw_size, err, errlen);

	if (ret)
		return ret;
	if (raw_size < 4 || memcmp(raw, zstd_magic, 4)) {
		*buf = raw;
		*size = raw_size;
		return 0;
	}
	ret = unzstd(path, raw, raw_size, buf, size, err, errlen);
	free(raw);
	return ret;
}

/* ---- Walking the btrees ---- */

static int img_key_cmp(const void *a, const void *b)
{
	const struct bk_img_key *l = a, *r = b;
	int c = bpos_cmp(bkey_pos(&l->k), bkey_pos(&r->k));

	if (c)
		return c;
	if (l->bset != r->bset)
		return l->bset > r->bset ? -1 : 1;	/* the newest first */
	return l->raw < r->raw ? 1 : l->raw > r->raw ? -1 : 0;
}

int bk_node_merge(const struct bch_node *n, struct bk_img_key **out, size_t *nr)
{
	struct bk_img_key *all = calloc(n->nr_keys + 1, sizeof(*all));
	size_t i = 0, live = 0;
	unsigned b;

	if (!all)
		return -ENOMEM;
	for (b = 0; b < n->nr_bsets; b++) {
		const uint64_t *w = bch_bset_words(n, &n->bsets[b]);
		size_t pos;

		for (pos = 0; pos < n->bsets[b].u64s; pos += ((const uint8_t *)&w[pos])[0]) {
			all[i].raw = (const uint8_t *)&w[pos];
			all[i].bset = b;
			bkey_unpack_key(&n->f, &w[pos], &all[i].k);
			i++;
		}
	}
	qsort(all, i, sizeof(*all), img_key_cmp);
	for (size_t j = 0; j < i; j++) {
		if (j && !bpos_cmp(bkey_pos(&all[j].k), bkey_pos(&all[j - 1].k)))
			continue;			/* overwritten by a newer bset */
		if (all[j].k.type == KEY_TYPE_deleted || all[j].k.type == KEY_TYPE_whiteout)
			continue;
		all[live++] = all[j];
	}
	*out = all;
	*nr = live;
	return 0;
}

static int btree_add_node(struct bk_img_btree *ib, const struct bch_node *n)
{
	if (ib->nr_nodes == ib->cap_nodes) {
		uint32_t cap = ib->cap_nodes ? 2 * ib->cap_nodes : 16;
		struct bch_node *p = realloc(ib->nodes, cap * sizeof(*p));

		if (!p)
			return -ENOMEM;
		ib->nodes = p;
		ib->cap_nodes = cap;
	}
	ib->nodes[ib->nr_nodes++] = *n;
	ib->nr_bsets += n->nr_bsets;
	ib->nr_keys += n->nr_keys;
	return 0;
}

/* Reads the node @ptr points to and, first, its children: post-order. */
static int walk(struct bk_image *im, struct bk_img_btree *ib, const struct bch_btree_ptr *ptr,
		unsigned level, FILE *errs)
{
	struct bch_node n;
	struct bk_img_key *keys = NULL;
	size_t nr = 0, i;
	char err[512];
	int ret = bch_node_read(&im->sb, im->buf, im->size, ptr, ib->id, level, &n, err,
				sizeof(err));

	if (ret) {
		if (errs)
			fprintf(errs, "%s; skipped\n", err);
		im->nr_node_errors++;
		ib->nr_skipped++;
		return ret == -ENOMEM ? ret : 0;
	}
	if (level) {
		ret = bk_node_merge(&n, &keys, &nr);
		for (i = 0; !ret && i < nr; i++) {
			struct bch_btree_ptr child;
			char where[128];

			ret = bch_ptr_parse(&keys[i].k, (const uint64_t *)keys[i].raw +
					    bkey_key_words(&n.f, keys[i].raw), &child, err,
					    sizeof(err));
			if (ret) {
				bch_node_where(&im->sb, ib->id, ptr, where, sizeof(where));
				if (errs)
					fprintf(errs, "%s: key %zu: %s; child skipped\n", where, i, err);
				im->nr_node_errors++;
				ib->nr_skipped++;
				ret = 0;
				continue;
			}
			ret = walk(im, ib, &child, level - 1, errs);
		}
		free(keys);
	}
	if (!ret)
		ret = btree_add_node(ib, &n);
	if (ret)
		bch_node_free(&n);
	return ret;
}

int bk_image_open(struct bk_image *im, uint8_t *buf, size_t size, FILE *errs,
		  char *err, size_t errlen)
{
	unsigned id;
	int ret;

	memset(im, 0, sizeof(*im));
	im->buf = buf;
	im->size = size;
	ret = bch_sb_read(buf, size, &im->sb, err, errlen);
	for (id = 0; !ret && id < BCH_BTREE_ID_NR; id++) {
		struct bk_img_btree *ib = &im->bt[id];
		const struct bch_root *r = &im->sb.roots[id];

		ib->id = id;
		ib->present = r->present;
		ib->depth = r->level + 1;
		if (r->present)
			ret = walk(im, ib, &r->ptr, r->level, errs);
		if (ret)
			snprintf(err, errlen, "%s", strerror(-ret));
	}
	if (ret)
		bk_image_close(im);
	return ret;
}

void bk_image_close(struct bk_image *im)
{
	unsigned id;
	uint32_t i;

	for (id = 0; id < BCH_BTREE_ID_NR; id++) {
		for (i = 0; i < im->bt[id].nr_nodes; i++)
			bch_node_free(&im->bt[id].nodes[i]);
		free(im->bt[id].nodes);
	}
	free(im->buf);
	memset(im, 0, sizeof(*im));
}

/* ---- The btree as a struct bk_btree ---- */

static int node_alloc(struct bk_node *bn, size_t words, uint32_t nr_keys)
{
	bn->words = calloc(words + 1, 8);
	bn->tab = calloc(nr_keys + 1, sizeof(*bn->tab));
	return bn->words && bn->tab ? 0 : -ENOMEM;
}

/* Index in bt of real node @j: leaves in key order first, then the rest. */
static uint32_t *tree_order(const struct bk_img_btree *ib, uint32_t *nr_leaves)
{
	uint32_t *idx = calloc(ib->nr_nodes + 1, sizeof(*idx)), j, leaf = 0, inner;

	if (!idx)
		return NULL;
	for (j = 0; j < ib->nr_nodes; j++)
		leaf += !ib->nodes[j].level;
	*nr_leaves = leaf;
	inner = leaf;
	for (j = 0, leaf = 0; j < ib->nr_nodes; j++)
		idx[j] = ib->nodes[j].level ? inner++ : leaf++;
	return idx;
}

static void link_leaves(struct bk_btree *bt)
{
	uint32_t i;

	for (i = 0; i + 1 < bt->nr_leaves; i++)
		bt->nodes[i].next_leaf = i + 2;
}

static uint32_t child_index(const struct bk_img_btree *ib, const uint32_t *order,
			    const struct bch_btree_ptr *p)
{
	uint32_t j;

	for (j = 0; j < ib->nr_nodes; j++)
		if (ib->nodes[j].ptr.sector == p->sector && ib->nodes[j].ptr.seq == p->seq)
			return order[j];
	return UINT32_MAX;
}

/* Real node @j's live keys, packed as on disk; children become indices. */
static int tree_node(struct bk_img_tree *it, const uint32_t *order, uint32_t j,
		     struct bk_keyset *live, char *err, size_t errlen)
{
	const struct bk_img_btree *ib = it->ib;
	const struct bch_node *n = &ib->nodes[j];
	struct bk_node *bn = &it->bt.nodes[order[j]];
	struct bk_img_key *keys;
	size_t nr, i, pos = 0;
	int ret = bk_node_merge(n, &keys, &nr);

	if (ret)
		return ret;
	memset(bn, 0, sizeof(*bn));
	bn->f = n->f;
	bn->min_key = n->min_key;
	bn->max_key = n->max_key;
	bn->level = n->level;
	bn->nr_keys = nr;
	ret = node_alloc(bn, (size_t)n->ptr.sectors_written * (BCH_SECTOR_SIZE / 8), nr);
	for (i = 0; !ret && i < nr; i++) {
		unsigned u64s = keys[i].raw[0];
		unsigned kw = bkey_key_words(&n->f, keys[i].raw);

		bn->tab[i] = pos;
		memcpy(bn->words + pos, keys[i].raw, 8 * u64s);
		bn->nr_unpacked += bkey_format_byte(keys[i].raw) != KEY_FORMAT_LOCAL_BTREE;
		if (n->level) {
			struct bch_btree_ptr p;
			uint32_t child;

			ret = bch_ptr_parse(&keys[i].k, bn->words + pos + kw, &p, err, errlen);
			child = ret ? UINT32_MAX : child_index(ib, order, &p);
			if (child == UINT32_MAX) {
				snprintf(err, errlen, "%s level %u key %zu: no such child",
					 bch_btree_name[ib->id], n->level, i);
				ret = -EINVAL;
				break;
			}
			bn->words[pos + kw] = child;	/* the mem_ptr slot: unused on disk */
		} else {
			ret = bk_keyset_add(live, &keys[i].k, (const uint64_t *)(keys[i].raw + 8 * kw));
		}
		pos += u64s;
	}
	bn->tab[nr] = pos;
	bn->u64s = pos;
	free(keys);
	return ret;
}

/* One node image per on-disk bset: its keys as they are, walked by a table. */
static int bset_node(struct bk_node *bn, const struct bch_node *n, unsigned b)
{
	const struct bch_bset *bs = &n->bsets[b];
	uint32_t nr;
	int ret;

	memset(bn, 0, sizeof(*bn));
	bn->f = n->f;
	bn->min_key = n->min_key;
	bn->max_key = n->max_key;
	ret = node_alloc(bn, bs->u64s, bs->nr_keys);
	if (ret)
		return ret;
	memcpy(bn->words, bch_bset_words(n, bs), 8 * (size_t)bs->u64s);
	nr = bk_build_table(&n->f, bn->words, bs->u64s, bn->tab, NULL);
	if (nr != bs->nr_keys)
		return -EINVAL;
	bn->nr_keys = nr;
	bn->u64s = bs->u64s;
	return 0;
}

int bk_img_tree_load(struct bk_img_tree *it, const struct bk_image *im, unsigned id,
		     struct bk_node_cache *nc, FILE *log_out, char *err, size_t errlen)
{
	const struct bk_img_btree *ib = &im->bt[id];
	uint32_t *order = NULL, nr_leaves, j, p;
	int ret = 0;

	memset(it, 0, sizeof(*it));
	it->ib = ib;
	if (ib->nr_skipped) {
		snprintf(err, errlen, "%s: %u nodes could not be read; not loaded",
			 bch_btree_name[id], ib->nr_skipped);
		return -EUCLEAN;
	}
	if (!ib->present || !ib->nr_nodes) {
		snprintf(err, errlen, "%s: empty (no root)", bch_btree_name[id]);
		return -ENOENT;
	}
	order = tree_order(ib, &nr_leaves);
	it->bset_node = calloc(ib->nr_nodes, sizeof(*it->bset_node));
	it->bt.nodes = calloc(ib->nr_nodes + ib->nr_bsets, sizeof(*it->bt.nodes));
	if (!order || !it->bset_node || !it->bt.nodes) {
		ret = -ENOMEM;
		goto out;
	}
	it->bt.o.node_size = im->sb.node_bytes;
	it->bt.nr_nodes = ib->nr_nodes + ib->nr_bsets;
	it->bt.cap_nodes = it->bt.nr_nodes;
	it->bt.nr_leaves = nr_leaves;
	it->bt.root = order[ib->nr_nodes - 1];
	it->bt.depth = ib->depth;
	it->bt.leaf_gaps = true;
	/* leaves in key order: post-order lists them so */
	for (j = 0; !ret && j < ib->nr_nodes; j++)
		if (!ib->nodes[j].level)
			ret = tree_node(it, order, j, &it->live, err, errlen);
	for (j = 0; !ret && j < ib->nr_nodes; j++)
		if (ib->nodes[j].level)
			ret = tree_node(it, order, j, &it->live, err, errlen);
	for (j = 0, p = ib->nr_nodes; !ret && j < ib->nr_nodes; j++) {
		unsigned b;

		it->bset_node[j] = p;
		for (b = 0; !ret && b < ib->nodes[j].nr_bsets; b++)
			ret = bset_node(&it->bt.nodes[p++], &ib->nodes[j], b);
	}
	if (ret)
		goto out;
	link_leaves(&it->bt);
	ret = bk_tree_load(&it->t, &it->bt, nc, log_out);
	if (ret)
		snprintf(err, errlen, "%s: loading into BPF: %s", bch_btree_name[id],
			 strerror(-ret));
	it->loaded = !ret;
out:
	free(order);
	if (ret == -ENOMEM)
		snprintf(err, errlen, "%s", strerror(ENOMEM));
	if (ret)
		bk_img_tree_unload(it);
	return ret;
}

uint32_t bk_img_tree_slots(const struct bk_image *im, unsigned id)
{
	const struct bk_img_btree *ib = &im->bt[id];

	/* its merged nodes, then one node per bset (bk_img_tree_load()) */
	return ib->nr_skipped || !ib->present ? 0 : ib->nr_nodes + ib->nr_bsets;
}

void bk_img_tree_unload(struct bk_img_tree *it)
{
	if (it->loaded)
		bk_tree_unload(&it->t);
	it->loaded = false;
	if (it->bt.nodes)
		bk_btree_free(&it->bt);
	free(it->bset_node);
	it->bset_node = NULL;
	bk_keyset_free(&it->live);
}

/* ---- Unpacking on-disk keys in the kernel ---- */

int bk_img_run_bset(struct bk_img_tree *it, uint32_t node, unsigned b, uint32_t *duration_ns,
		    char *err, size_t errlen)
{
	uint32_t bn = it->bset_node[node] + b, got = 0, status;
	const struct bk_fmt_entry *e = &it->t.nc->cache.e[it->t.fid_of_node[bn]];
	const struct bk_node *pn = &it->bt.nodes[bn];
	int ret = bk_run_node(&e->scan, &it->t.nc->srt, it->t.base + bn, 0, pn->nr_keys, &status,
			      &got, 1, duration_ns);

	if (ret) {
		snprintf(err, errlen, "%s node %u bset %u: the run failed: %s",
			 bch_btree_name[it->ib->id], node, b, strerror(-ret));
		return ret;
	}
	if (status != BK_OK) {
		snprintf(err, errlen, "%s node %u bset %u: the program stopped with status %u "
			 "after %u of %u keys", bch_btree_name[it->ib->id], node, b, status, got,
			 pn->nr_keys);
		return -EIO;
	}
	if (got != pn->nr_keys) {
		snprintf(err, errlen, "%s node %u bset %u: the kernel unpacked %u of %u keys",
			 bch_btree_name[it->ib->id], node, b, got, pn->nr_keys);
		return -EIO;
	}
	return 0;
}

int bk_img_unpack_bset(struct bk_img_tree *it, uint32_t node, unsigned b, struct bkey *out,
		       char *err, size_t errlen)
{
	const struct bch_node *n = &it->ib->nodes[node];
	const struct bk_node *pn = &it->bt.nodes[it->bset_node[node] + b];
	uint32_t i;
	int ret = bk_img_run_bset(it, node, b, NULL, err, errlen);

	if (ret)
		return ret;
	for (i = 0; i < pn->nr_keys; i++) {
		struct bkey ref;

		bkey_unpack_key(&n->f, pn->words + pn->tab[i], &ref);
		memcpy(&out[i], &it->t.nc->srt.out[i], sizeof(out[i]));
		if (memcmp(&ref, &out[i], sizeof(ref))) {
			snprintf(err, errlen, "%s node %u bset %u key %u: the kernel's unpack "
				 "differs from the model's", bch_btree_name[it->ib->id], node, b, i);
			return -EIO;
		}
	}
	return 0;
}

void bk_img_key_str(const struct bkey *k, char *buf, size_t len)
{
	const char *tn = bch_key_type_name(k->type);
	char pos[80], type[16];

	bch_pos_str(bkey_pos(k), pos, sizeof(pos));
	if (!tn) {
		snprintf(type, sizeof(type), "%u", k->type);
		tn = type;
	}
	snprintf(buf, len, "u64s %u type %s %s len %u ver %llu", k->u64s, tn, pos, k->size,
		 (unsigned long long)k->version_lo);
}

int bk_img_list_ondisk(struct bk_img_tree *it, const struct bch_sb_info *sb, FILE *out,
		       char *err, size_t errlen)
{
	const struct bk_img_btree *ib = it->ib;
	static struct bkey keys[BK_OUT_CAP_KEYS];
	uint32_t j, i;
	int ret;

	for (j = 0; j < ib->nr_nodes; j++) {
		const struct bch_node *n = &ib->nodes[j];
		char a[64], z[64], p[48], f[200], line[200];
		unsigned b;

		bch_pos_str(n->min_key, a, sizeof(a));
		bch_pos_str(n->max_key, z, sizeof(z));
		bch_ptr_str(&n->ptr, sb->bucket_sectors, p, sizeof(p));
		bkey_format_to_str(&n->f, f, sizeof(f));
		fprintf(out, "%s l %u %s..%s seq %llx written %u ptr %s %s\n",
			bch_btree_name[ib->id], n->level, a, z, (unsigned long long)n->ptr.seq,
			n->ptr.sectors_written, p, f);
		for (b = 0; b < n->nr_bsets; b++) {
			const struct bch_bset *bs = &n->bsets[b];

			fprintf(out, "  offset %u version %u, journal seq %llu\n", bs->sector,
				bs->version, (unsigned long long)bs->journal_seq);
			ret = bk_img_unpack_bset(it, j, b, keys, err, errlen);
			if (ret)
				return ret;
			for (i = 0; i < bs->nr_keys; i++) {
				bk_img_key_str(&keys[i], line, sizeof(line));
				fprintf(out, "    %s\n", line);
			}
		}
	}
	return 0;
}
