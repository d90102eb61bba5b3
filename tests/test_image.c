// SPDX-License-Identifier: GPL-2.0
/*
 * Real bcachefs images (../shared/data/bcachefs, made by bcachefs-tools
 * v0.27) against bcachefs's own listings of them: every on-disk key
 * unpacked in the kernel equals nodes_ondisk; nodes, bsets, formats and
 * checksums equal the README and the independent decode; lookups and
 * scans through BPF equal the iterator view (keys-*.txt); and damaged
 * images are refused with the right message.  SKIPs without the data.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zlib.h>

#include "test_progs.h"
#include "image.h"
#include "kenv.h"

struct image_case {
	const char	*name;
	uint32_t	nodes, bsets, keys;	/* README section 2 */
};

static const struct image_case images[] = {
	{ "include4k", 654, 1224, 23294 },
	{ "docdefault", 40, 188, 19107 },
	{ "mutated16k", 177, 1052, 27788 },
};

static char data_dir[512];

static bool have_data(void)
{
	snprintf(data_dir, sizeof(data_dir), "%s/data/bcachefs", env_shared_dir);
	if (access(data_dir, R_OK)) {
		test__skip("%s absent: the real images live in ../shared (BKEY_SHARED=DIR)",
			   data_dir);
		return false;
	}
	return true;
}

/* The decompressed image, read once per image. */
static const struct bk_image *image_get(unsigned i)
{
	static struct bk_image im[3];
	static bool tried[3];
	char path[640], err[512];
	uint8_t *buf;
	size_t size;
	int ret;

	if (!tried[i]) {
		tried[i] = true;
		snprintf(path, sizeof(path), "%s/images/%s.img.zst", data_dir, images[i].name);
		ret = bk_image_read_file(path, &buf, &size, err, sizeof(err));
		if (!ASSERT_OK(ret, "read image") ||
		    !ASSERT_OK(bk_image_open(&im[i], buf, size, stderr, err, sizeof(err)),
			       "open image")) {
			fprintf(stderr, "  %s\n", err);
			return NULL;
		}
	}
	return im[i].buf ? &im[i] : NULL;
}

/* A listing, gzipped or not: gzopen reads both. */
static gzFile listing_open(const char *image, const char *file)
{
	char path[700];
	gzFile f;

	snprintf(path, sizeof(path), "%s/listings/%s/%s.gz", data_dir, image, file);
	f = gzopen(path, "r");
	if (!f) {
		snprintf(path, sizeof(path), "%s/listings/%s/%s", data_dir, image, file);
		f = gzopen(path, "r");
	}
	return f;
}

static char *next_line(gzFile f, char *buf, int len)
{
	char *nl;

	if (!gzgets(f, buf, len))
		return NULL;
	nl = strchr(buf, '\n');
	if (nl)
		*nl = 0;
	return buf;
}

/* A key line without its value: the part before ": ". */
static void strip_value(char *line)
{
	char *c = strstr(line, ": ");

	if (c)
		*c = 0;
	else if (line[0] && line[strlen(line) - 1] == ':')
		line[strlen(line) - 1] = 0;
}

static bool kernel_ok(void)
{
	struct kenv *k = kenv_get();

	if (!k)
		return false;
	if (!k->ft.may_goto && !k->ft.bpf_loop) {
		test__skip("no shape can walk a node: neither may_goto (6.9+) nor bpf_loop with the JIT");
		return false;
	}
	return true;
}

/* ---- nodes_ondisk: every key unpacked in the kernel ---- */

static char line[1 << 16];
static struct bkey kkeys[BK_OUT_CAP_KEYS];

struct ondisk_state {
	struct bk_img_tree	*it;
	const struct bch_sb_info *sb;
	uint32_t		node;		/* the node being compared, + 1 */
	unsigned		bset;		/* the bset, + 1 */
	uint32_t		key;		/* keys of it compared */
	unsigned long		keys, nodes, bad;
};

static bool bset_done(struct ondisk_state *s)
{
	const struct bch_node *n;

	if (!s->node || !s->bset)
		return true;
	n = &s->it->ib->nodes[s->node - 1];
	return ASSERT_EQ(s->key, n->bsets[s->bset - 1].nr_keys, "keys listed in the bset");
}

static bool ondisk_node_line(struct ondisk_state *s, const char *l)
{
	char max[64], min[64], ptr[48], want[64];
	unsigned long long seq;
	unsigned written, gen;
	const struct bch_node *n;

	if (!bset_done(s))
		return false;
	if (!ASSERT_LT(s->node, s->it->ib->nr_nodes, "nodes of the btree"))
		return false;
	n = &s->it->ib->nodes[s->node++];
	s->bset = 0;
	s->nodes++;
	if (!ASSERT_EQ(sscanf(l, "u64s 11 type btree_ptr_v2 %63s len 0 ver 0: seq %llx written %u "
			      "min_key %63s ptr: %47s gen %u", max, &seq, &written, min, ptr, &gen),
		       6, "node line parsed"))
		return false;
	bch_pos_str(n->max_key, want, sizeof(want));
	if (!ASSERT_STREQ(want, max, "node max_key"))
		return false;
	bch_pos_str(n->min_key, want, sizeof(want));
	if (!ASSERT_STREQ(want, min, "node min_key"))
		return false;
	bch_ptr_str(&n->ptr, s->sb->bucket_sectors, want, sizeof(want));
	return ASSERT_STREQ(want, ptr, "node pointer") &&
	       ASSERT_EQ(n->ptr.seq, seq, "node seq") &&
	       ASSERT_EQ(n->ptr.sectors_written, written, "node written");
}

static bool ondisk_bset_line(struct ondisk_state *s, const char *l)
{
	const struct bch_node *n;
	char want[128], err[512];

	if (!bset_done(s) || !ASSERT_GT(s->node, 0, "a bset after a node"))
		return false;
	n = &s->it->ib->nodes[s->node - 1];
	if (!ASSERT_LT(s->bset, n->nr_bsets, "bsets of the node"))
		return false;
	snprintf(want, sizeof(want), "  offset %u version %u, journal seq %llu",
		 n->bsets[s->bset].sector, n->bsets[s->bset].version,
		 (unsigned long long)n->bsets[s->bset].journal_seq);
	if (!ASSERT_STREQ(want, l, "bset line"))
		return false;
	if (!ASSERT_OK(bk_img_unpack_bset(s->it, s->node - 1, s->bset, kkeys, err, sizeof(err)),
		       "kernel unpack of the bset")) {
		fprintf(stderr, "  %s\n", err);
		return false;
	}
	s->bset++;
	s->key = 0;
	return true;
}

static bool ondisk_key_line(struct ondisk_state *s, char *l)
{
	const struct bch_node *n;
	char got[200];

	if (!ASSERT_GT(s->bset, 0, "a key after a bset"))
		return false;
	n = &s->it->ib->nodes[s->node - 1];
	if (!ASSERT_LT(s->key, n->bsets[s->bset - 1].nr_keys, "keys of the bset"))
		return false;
	strip_value(l);
	bk_img_key_str(&kkeys[s->key++], got, sizeof(got));
	s->keys++;
	return ASSERT_STREQ(got, l + 4, "key (kernel unpack)");
}

static void check_ondisk_btree(const struct bk_image *im, const char *image, unsigned id,
			       unsigned long *keys, unsigned long *nodes)
{
	struct ondisk_state s = { .sb = &im->sb };
	struct bk_img_tree it;
	char file[96], err[512];
	gzFile f;
	int ret;

	snprintf(file, sizeof(file), "nodes_ondisk-%s-l0.txt", bch_btree_name[id]);
	f = listing_open(image, file);
	if (!f) {	/* empty btrees' node listings were deleted */
		ASSERT_EQ(im->bt[id].nr_nodes, 0, "nodes of a btree without a listing");
		return;
	}
	ret = bk_img_tree_load(&it, im, id, NULL, stderr, err, sizeof(err));
	if (!ASSERT_OK(ret, bch_btree_name[id])) {
		fprintf(stderr, "  %s\n", err);
		gzclose(f);
		return;
	}
	s.it = &it;
	next_line(f, line, sizeof(line));	/* two log lines */
	next_line(f, line, sizeof(line));
	while (next_line(f, line, sizeof(line))) {
		bool ok = true;

		if (!strncmp(line, "u64s ", 5))
			ok = ondisk_node_line(&s, line);
		else if (!strncmp(line, "  offset ", 9))
			ok = ondisk_bset_line(&s, line);
		else if (!strncmp(line, "    u64s ", 9))
			ok = ondisk_key_line(&s, line);
		/* other lines continue a multi-line value */
		if (!ok) {
			fprintf(stderr, "  %s %s node %u: stopped\n", image, bch_btree_name[id],
				s.node);
			break;
		}
	}
	if (bset_done(&s))
		ASSERT_EQ(s.node, it.ib->nr_nodes, "nodes listed");
	*keys += s.keys;
	*nodes += s.nodes;
	gzclose(f);
	bk_img_tree_unload(&it);
}

/* ---- The decoded manifest and bsets ---- */

struct manifest_row {
	char		node_id[48], btree[24], min[64], max[64], seq[24], offsets[512];
	unsigned	level, written, key_u64s, bits[6], n_bsets, n_keys, csum_ok;
	unsigned long long byte_offset, off[6];
};

static bool manifest_parse(char *l, struct manifest_row *r)
{
	char *col[40];
	int n = 0, i;

	for (char *t = strtok(l, "\t"); t && n < 40; t = strtok(NULL, "\t"))
		col[n++] = t;
	if (n != 37)
		return false;
	snprintf(r->node_id, sizeof(r->node_id), "%s", col[0]);
	snprintf(r->btree, sizeof(r->btree), "%s", col[1]);
	r->level = atoi(col[3]);
	snprintf(r->min, sizeof(r->min), "%s", col[5]);
	snprintf(r->max, sizeof(r->max), "%s", col[6]);
	snprintf(r->seq, sizeof(r->seq), "%s", col[7]);
	r->written = atoi(col[8]);
	r->byte_offset = strtoull(col[13], NULL, 10);
	r->key_u64s = atoi(col[16]);
	for (i = 0; i < 6; i++) {
		r->bits[i] = atoi(col[18 + i]);
		r->off[i] = strtoull(col[24 + i], NULL, 10);
	}
	r->n_bsets = atoi(col[30]);
	snprintf(r->offsets, sizeof(r->offsets), "%s", col[31]);
	r->n_keys = atoi(col[33]);
	r->csum_ok = atoi(col[36]);
	return true;
}

static const struct bch_node *node_by_id(const struct bk_image *im, const char *node_id)
{
	char btree[32];
	const char *dash = strrchr(node_id, '-');
	int id;
	unsigned idx;

	if (!dash || dash - node_id >= (int)sizeof(btree))
		return NULL;
	memcpy(btree, node_id, dash - node_id);
	btree[dash - node_id] = 0;
	id = bch_btree_id(btree);
	idx = atoi(dash + 1);
	if (id < 0 || idx >= im->bt[id].nr_nodes)
		return NULL;
	return &im->bt[id].nodes[idx];
}

static void check_manifest_row(const struct bk_image *im, struct manifest_row *r)
{
	const struct bch_node *n = node_by_id(im, r->node_id);
	char s[512];
	unsigned i;
	size_t len = 0;

	if (!ASSERT_TRUE(n != NULL, r->node_id))
		return;
	ASSERT_EQ(n->byte_off, r->byte_offset, "byte offset");
	ASSERT_EQ(n->level, r->level, "level");
	ASSERT_EQ(n->ptr.sectors_written, r->written, "sectors written");
	bch_pos_str(n->min_key, s, sizeof(s));
	ASSERT_STREQ(s, r->min, "min_key");
	bch_pos_str(n->max_key, s, sizeof(s));
	ASSERT_STREQ(s, r->max, "max_key");
	ASSERT_EQ(strtoull(r->seq, NULL, 16), n->ptr.seq, "seq");
	ASSERT_EQ(n->f.key_u64s, r->key_u64s, "key_u64s");
	for (i = 0; i < 6; i++) {
		ASSERT_EQ(n->f.bits_per_field[i], r->bits[i], "bits_per_field");
		ASSERT_EQ(n->f.field_offset[i], r->off[i], "field_offset");
	}
	ASSERT_EQ(n->nr_bsets, r->n_bsets, "bsets");
	for (i = 0; i < n->nr_bsets; i++)
		len += snprintf(s + len, sizeof(s) - len, "%s%u", i ? "," : "", n->bsets[i].sector);
	ASSERT_STREQ(s, r->offsets, "bset sector offsets");
	ASSERT_EQ(n->nr_keys, r->n_keys, "keys");
	ASSERT_EQ(r->csum_ok, 1, "the decode's checksum verdict");
}

/* Distinct formats of a btree's nodes. */
static unsigned distinct_formats(const struct bkey_format *f, unsigned n)
{
	unsigned i, j, d = 0;

	for (i = 0; i < n; i++) {
		for (j = 0; j < i; j++)
			if (!memcmp(&f[i], &f[j], sizeof(f[i])))
				break;
		d += j == i;
	}
	return d;
}

static unsigned btree_formats(const struct bk_img_btree *ib)
{
	struct bkey_format *f = calloc(ib->nr_nodes + 1, sizeof(*f));
	uint32_t j;
	unsigned d;

	for (j = 0; j < ib->nr_nodes; j++)
		f[j] = ib->nodes[j].f;
	d = distinct_formats(f, ib->nr_nodes);
	free(f);
	return d;
}

/* Distinct shapes (key_u64s and widths) among the nodes' formats. */
static unsigned btree_shapes(const struct bk_img_btree *ib)
{
	struct bkey_format *f = calloc(ib->nr_nodes + 1, sizeof(*f));
	uint32_t j;
	unsigned d;

	for (j = 0; j < ib->nr_nodes; j++) {
		f[j] = ib->nodes[j].f;
		memset(f[j].field_offset, 0, sizeof(f[j].field_offset));
	}
	d = distinct_formats(f, ib->nr_nodes);
	free(f);
	return d;
}

static void check_manifest(const struct bk_image *im, unsigned img)
{
	static struct bkey_format fmts[BCH_BTREE_ID_NR][1024];
	unsigned nr[BCH_BTREE_ID_NR] = {}, id, rows = 0;
	struct manifest_row r;
	char path[700];
	FILE *f;

	snprintf(path, sizeof(path), "%s/decoded/%s/nodes-manifest.tsv", data_dir,
		 images[img].name);
	f = fopen(path, "r");
	if (!ASSERT_TRUE(f != NULL, "nodes-manifest.tsv"))
		return;
	fgets(line, sizeof(line), f);	/* the header */
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = 0;
		if (!ASSERT_TRUE(manifest_parse(line, &r), "manifest row"))
			break;
		check_manifest_row(im, &r);
		id = bch_btree_id(r.btree);
		if (ASSERT_LT(nr[id], 1024, "nodes per btree")) {
			struct bkey_format *x = &fmts[id][nr[id]++];

			memset(x, 0, sizeof(*x));
			x->key_u64s = r.key_u64s;
			x->nr_fields = BKEY_NR_FIELDS;
			for (unsigned i = 0; i < 6; i++) {
				x->bits_per_field[i] = r.bits[i];
				x->field_offset[i] = r.off[i];
			}
		}
		rows++;
	}
	fclose(f);
	ASSERT_EQ(rows, images[img].nodes, "manifest rows = README nodes");
	for (id = 0; id < BCH_BTREE_ID_NR; id++) {
		const struct bk_img_btree *ib = &im->bt[id];

		ASSERT_EQ(ib->nr_nodes, nr[id], bch_btree_name[id]);
		ASSERT_EQ(btree_formats(ib), distinct_formats(fmts[id], nr[id]), "distinct formats");
	}
}

/* Every bset's stored checksum as the independent decode read it, and ours. */
static void check_checksums(const struct bk_image *im, unsigned img, unsigned long *bsets)
{
	char path[700], node_id[64];
	gzFile f;

	snprintf(path, sizeof(path), "%s/decoded/%s/bsets.jsonl.gz", data_dir, images[img].name);
	f = gzopen(path, "r");
	if (!ASSERT_TRUE(f != NULL, "bsets.jsonl.gz"))
		return;
	while (next_line(f, line, sizeof(line))) {
		const struct bch_node *n;
		const char *p = strstr(line, "\"node_id\": \"");
		unsigned b = 0;

		if (!ASSERT_TRUE(p && sscanf(p + 12, "%63[^\"]", node_id) == 1, "node_id"))
			break;
		n = node_by_id(im, node_id);
		if (!ASSERT_TRUE(n != NULL, node_id))
			continue;
		for (p = strstr(line, "\"csum_stored\": "); p; p = strstr(p + 1, "\"csum_stored\": ")) {
			unsigned long long v = strtoull(p + 15, NULL, 10);

			if (!ASSERT_LT(b, n->nr_bsets, "bsets in the decode"))
				break;
			ASSERT_EQ(n->bsets[b].csum_stored, v, "stored checksum");
			ASSERT_EQ(n->bsets[b].csum_computed, v, "computed checksum");
			b++;
			(*bsets)++;
		}
		ASSERT_EQ(b, n->nr_bsets, "bsets of the node");
	}
	gzclose(f);
}

/* ---- keys-*.txt: lookups and scans through BPF ---- */

static char **read_keys_listing(const char *image, unsigned id, size_t *nr)
{
	char file[96];
	char **ref = NULL;
	size_t cap = 0;
	gzFile f;

	*nr = 0;
	snprintf(file, sizeof(file), "keys-%s.txt", bch_btree_name[id]);
	f = listing_open(image, file);
	if (!f)
		return NULL;
	next_line(f, line, sizeof(line));
	next_line(f, line, sizeof(line));
	while (next_line(f, line, sizeof(line))) {
		if (strncmp(line, "u64s ", 5))
			continue;		/* a multi-line value */
		strip_value(line);
		if (*nr == cap) {
			cap = cap ? 2 * cap : 1024;
			ref = realloc(ref, cap * sizeof(*ref));
		}
		ref[(*nr)++] = strdup(line);
	}
	gzclose(f);
	return ref;
}

static void check_answers(struct bk_img_tree *it, char **ref, size_t nr,
			  unsigned long *lookups, unsigned long *scanned)
{
	const struct bk_keyset *ks = &it->live;
	size_t q = 0, i, got;
	struct bpos *pos = calloc(2 * nr + 1, sizeof(*pos));
	struct bk_result *res = calloc(2 * nr + 2, sizeof(*res));
	char s[200];

	pos[q++] = (struct bpos){ 0, 0, 0 };
	for (i = 0; i < nr; i++) {
		pos[q++] = bkey_pos(&ks->keys[i].k);
		pos[q++] = bpos_successor(bkey_pos(&ks->keys[i].k));
	}
	if (ASSERT_OK(bk_tree_lookup(&it->t, pos, q, res), "lookups")) {
		for (i = 0; i < q; i++) {
			/* POS_MIN: key 0; key i: key i; just past key i: key i + 1 */
			size_t want = i ? (i - 1) / 2 + !(i & 1) : 0;

			if (want == nr) {
				if (!ASSERT_EQ(res[i].found, 0, "past the last key"))
					break;
				continue;
			}
			if (!ASSERT_EQ(res[i].found, 1, "found"))
				break;
			bk_img_key_str((const struct bkey *)res[i].key, s, sizeof(s));
			if (!ASSERT_STREQ(s, ref[want], "lookup answer"))
				break;
		}
		*lookups += q;
	}
	if (ASSERT_OK(bk_tree_scan(&it->t, pos[0], nr + 1, res, &got), "scan")) {
		ASSERT_EQ(got, nr, "keys scanned");
		for (i = 0; i < got && i < nr; i++) {
			bk_img_key_str((const struct bkey *)res[i].key, s, sizeof(s));
			if (!ASSERT_STREQ(s, ref[i], "scanned key"))
				break;
		}
		*scanned += got;
	}
	free(pos);
	free(res);
}

/* Distinct shapes among the nodes of every loaded btree of @im. */
static unsigned image_shapes(const struct bk_image *im)
{
	struct bkey_format *f = NULL;
	uint32_t n = 0, j;
	unsigned id, d;

	for (id = 0; id < BCH_BTREE_ID_NR; id++) {
		const struct bk_img_btree *ib = &im->bt[id];

		if (!bk_img_tree_slots(im, id))
			continue;
		f = realloc(f, (n + ib->nr_nodes) * sizeof(*f));
		for (j = 0; f && j < ib->nr_nodes; j++) {
			f[n + j] = ib->nodes[j].f;
			memset(f[n + j].field_offset, 0, sizeof(f[n + j].field_offset));
		}
		n += ib->nr_nodes;
	}
	d = f ? distinct_formats(f, n) : 0;
	free(f);
	return d;
}

/*
 * Every btree of the image in one node cache, as bcachefs keeps them: one
 * program pair per shape of the whole image, each tree's nodes in their
 * own slots (child pointers and leaf links relocated), every answer
 * checked.
 */
static void check_lookups(const struct bk_image *im, unsigned img, unsigned long *lookups,
			  unsigned long *scanned, unsigned long *live)
{
	static struct bk_img_tree its[BCH_BTREE_ID_NR];
	struct bk_node_cache nc;
	uint32_t slots = 0;
	unsigned id;

	for (id = 0; id < BCH_BTREE_ID_NR; id++)
		slots += bk_img_tree_slots(im, id);
	if (!ASSERT_OK(bk_node_cache_open(&nc, im->sb.node_bytes, slots), "node cache"))
		return;
	for (id = 0; id < BCH_BTREE_ID_NR; id++) {
		struct bk_img_tree *it = &its[id];
		char err[512], s[200];
		size_t nr, i;
		char **ref = read_keys_listing(images[img].name, id, &nr);
		int ret;

		ret = bk_img_tree_load(it, im, id, &nc, stderr, err, sizeof(err));
		if (ret == -ENOENT) {
			ASSERT_EQ(nr, 0, "keys of an empty btree");
			goto next;
		}
		if (!ASSERT_OK(ret, bch_btree_name[id])) {
			fprintf(stderr, "  %s\n", err);
			goto next;
		}
		/* the merged view first: bsets merged, whiteouts dropped */
		ASSERT_EQ(it->live.nr, nr, bch_btree_name[id]);
		for (i = 0; i < nr && i < it->live.nr; i++) {
			bk_img_key_str(&it->live.keys[i].k, s, sizeof(s));
			if (!ASSERT_STREQ(s, ref[i], "merged key"))
				break;
		}
		ASSERT_EQ(it->t.nr_shapes, btree_shapes(it->ib), "the tree's shapes = its nodes' shapes");
		ASSERT_EQ(it->t.nr_formats, btree_formats(it->ib), "formats counted");
		if (i == nr && nr == it->live.nr)
			check_answers(it, ref, nr, lookups, scanned);
		*live += nr;
next:
		for (i = 0; i < nr; i++)
			free(ref[i]);
		free(ref);
	}
	ASSERT_EQ(nc.cache.nr, image_shapes(im), "one entry per shape of the image");
	ASSERT_EQ(nc.programs_loaded, 2 * nc.cache.nr, "two programs per shape");
	ASSERT_EQ(nc.nr_used, slots, "every tree in its own slots");
	for (id = 0; id < BCH_BTREE_ID_NR; id++)
		bk_img_tree_unload(&its[id]);
	bk_node_cache_close(&nc);
}

DEFINE_TEST(image_real)
{
	unsigned i;

	if (!have_data())
		return;
	for (i = 0; i < 3; i++) {
		const struct bk_image *im;
		unsigned long keys = 0, nodes = 0, bsets = 0, lookups = 0, scanned = 0, live = 0;
		char name[64];
		unsigned id;
		uint64_t nb = 0, nk = 0;
		uint32_t nn = 0;

		snprintf(name, sizeof(name), "%s/manifest", images[i].name);
		if (test__start_subtest(name) && (im = image_get(i))) {
			ASSERT_EQ(im->nr_node_errors, 0, "node errors");
			for (id = 0; id < BCH_BTREE_ID_NR; id++) {
				nn += im->bt[id].nr_nodes;
				nb += im->bt[id].nr_bsets;
				nk += im->bt[id].nr_keys;
			}
			ASSERT_EQ(nn, images[i].nodes, "nodes (README)");
			ASSERT_EQ(nb, images[i].bsets, "bsets (README)");
			ASSERT_EQ(nk, images[i].keys, "keys (README)");
			check_manifest(im, i);
		}
		snprintf(name, sizeof(name), "%s/checksums", images[i].name);
		if (test__start_subtest(name) && (im = image_get(i))) {
			check_checksums(im, i, &bsets);
			ASSERT_EQ(bsets, images[i].bsets, "bsets whose checksum was compared");
			test__count("real bsets whose CRC-32C matched the decode", bsets);
		}
		snprintf(name, sizeof(name), "%s/ondisk", images[i].name);
		if (test__start_subtest(name) && kernel_ok() && (im = image_get(i))) {
			for (id = 0; id < BCH_BTREE_ID_NR; id++)
				check_ondisk_btree(im, images[i].name, id, &keys, &nodes);
			ASSERT_EQ(nodes, images[i].nodes, "nodes compared");
			ASSERT_EQ(keys, images[i].keys, "keys compared");
			test__count("real on-disk keys unpacked in the kernel = nodes_ondisk", keys);
		}
		snprintf(name, sizeof(name), "%s/lookups", images[i].name);
		if (test__start_subtest(name) && kernel_ok() && (im = image_get(i))) {
			check_lookups(im, i, &lookups, &scanned, &live);
			ASSERT_GT(live, 0, "live keys");
			test__count("real-tree lookups = keys-*.txt", lookups);
			test__count("real-tree scanned keys = keys-*.txt", scanned);
		}
	}
}

/* ---- Damaged images ---- */

/* Opens a damaged copy of @im: 0 or -errno, what went to errs in *msgs. */
static int open_damaged(const uint8_t *src, size_t size, size_t copy_size,
			void (*damage)(uint8_t *img), struct bk_image *out, char **msgs,
			char *err, size_t errlen)
{
	uint8_t *buf = malloc(copy_size ? copy_size : 1);
	size_t mlen;
	FILE *errs = open_memstream(msgs, &mlen);
	int ret;

	memcpy(buf, src, copy_size < size ? copy_size : size);
	if (damage)
		damage(buf);
	*err = 0;
	ret = bk_image_open(out, buf, copy_size, errs, err, errlen);
	fclose(errs);
	return ret;
}

/* include4k/extents-002: sector 13320, a leaf of the extents btree */
#define EXTENTS_002		6819840ull
/* include4k/alloc-001: bsets at sectors 0, 4 and 5 of 6 written */
#define ALLOC_001		19419136ull

static void flip_key_bit(uint8_t *img)
{
	img[EXTENTS_002 + 200] ^= 0x10;
}

static void bset_past_written(uint8_t *img)
{
	/* the third bset's u64s (bset header at +16, u64s at +22) */
	img[ALLOC_001 + 5 * 512 + 16 + 22] = 0xff;
}

static void bad_magic(uint8_t *img)
{
	img[4096 + 24] ^= 1;
}

static void old_version(uint8_t *img)
{
	img[4096 + 16] = 26;
}

DEFINE_TEST(image_damaged)
{
	const struct bk_image *im;
	struct bk_image d;
	char err[512], *msgs = NULL;
	int ret;

	if (!have_data() || !(im = image_get(0)))
		return;
	if (test__start_subtest("flipped_bit")) {
		ret = open_damaged(im->buf, im->size, im->size, flip_key_bit, &d, &msgs, err,
				   sizeof(err));
		if (ASSERT_OK(ret, "open")) {
			struct bk_img_tree it;

			ASSERT_EQ(d.nr_node_errors, 1, "node errors");
			ASSERT_HAS_SUBSTR(msgs, "extents node 0:52:8 (sector 13320, byte 6819840)",
					  "names the node");
			ASSERT_HAS_SUBSTR(msgs, "checksum", "says checksum");
			ASSERT_EQ(d.bt[0].nr_skipped, 1, "extents nodes skipped");
			ASSERT_EQ(d.bt[0].nr_nodes, 115, "extents nodes read");
			ASSERT_EQ(d.bt[1].nr_nodes, im->bt[1].nr_nodes, "inodes untouched");
			ret = bk_img_tree_load(&it, &d, 0, NULL, stderr, err, sizeof(err));
			ASSERT_EQ(ret, -EUCLEAN, "an incomplete btree is not loaded");
			ASSERT_HAS_SUBSTR(err, "could not be read", "why");
			bk_img_tree_unload(&it);
			bk_image_close(&d);
		}
		free(msgs);
	}
	if (test__start_subtest("truncated")) {
		char path[700], tmp[] = "/tmp/bkey-trunc.XXXXXX";
		uint8_t *buf = NULL, *z = NULL;
		size_t size, zsize = 0;
		FILE *f;
		int fd;

		/* cut at 48 MiB: every node past it is reported, the rest read */
		ret = open_damaged(im->buf, im->size, 48u << 20, NULL, &d, &msgs, err,
				   sizeof(err));
		if (ASSERT_OK(ret, "open a truncated image")) {
			ASSERT_GT(d.nr_node_errors, 0, "node errors");
			ASSERT_HAS_SUBSTR(msgs, "past the end of the image (50331648 bytes)",
					  "says truncated");
			bk_image_close(&d);
		}
		free(msgs);
		/* not even a superblock */
		ret = open_damaged(im->buf, im->size, 4096 + 600, NULL, &d, &msgs, err, sizeof(err));
		ASSERT_EQ(ret, -ERANGE, "a superblock cut short");
		ASSERT_HAS_SUBSTR(err, "too short for a superblock", "says so");
		free(msgs);
		/* a truncated .zst */
		snprintf(path, sizeof(path), "%s/images/include4k.img.zst", data_dir);
		f = fopen(path, "rb");
		if (ASSERT_TRUE(f != NULL, "open .zst")) {
			z = malloc(1 << 20);
			zsize = fread(z, 1, 1 << 20, f);
			fclose(f);
		}
		fd = mkstemp(tmp);
		if (ASSERT_GE(fd, 0, "mkstemp") && z) {
			ASSERT_EQ(write(fd, z, zsize), zsize, "write");
			close(fd);
			ret = bk_image_read_file(tmp, &buf, &size, err, sizeof(err));
			ASSERT_EQ(ret, -EINVAL, "a truncated .zst");
			ASSERT_HAS_SUBSTR(err, "truncated", "says truncated");
			unlink(tmp);
		}
		free(z);
	}
	if (test__start_subtest("bset_past_written")) {
		ret = open_damaged(im->buf, im->size, im->size, bset_past_written, &d, &msgs, err,
				   sizeof(err));
		if (ASSERT_OK(ret, "open")) {
			ASSERT_EQ(d.nr_node_errors, 1, "node errors");
			ASSERT_HAS_SUBSTR(msgs, "alloc node 0:148:40 (sector 37928, byte 19419136): "
					  "bset 2 at sector 5: 255 u64s of keys run past written",
					  "names the node and the bset");
			ASSERT_EQ(d.bt[4].nr_skipped, 1, "alloc nodes skipped");
			bk_image_close(&d);
		}
		free(msgs);
	}
	if (test__start_subtest("bad_superblock")) {
		ret = open_damaged(im->buf, im->size, im->size, bad_magic, &d, &msgs, err,
				   sizeof(err));
		ASSERT_EQ(ret, -EINVAL, "wrong magic");
		ASSERT_HAS_SUBSTR(err, "wrong magic", "says so");
		free(msgs);
		ret = open_damaged(im->buf, im->size, im->size, old_version, &d, &msgs, err,
				   sizeof(err));
		ASSERT_EQ(ret, -EPROTONOSUPPORT, "metadata version 26");
		ASSERT_HAS_SUBSTR(err, "metadata version 26", "says which");
		free(msgs);
	}
}
