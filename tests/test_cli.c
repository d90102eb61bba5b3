// SPDX-License-Identifier: GPL-2.0
/*
 * The loader's command line, run as a user would: exit statuses, messages,
 * and that the kernel engine writes exactly what the reference writes.
 */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "test_progs.h"
#include "examples.h"
#include "kenv.h"
#include "keytext.h"
#include "btree.h"
#include "pin.h"

/* the loader under test: ./loader, or $BKEY_LOADER (make sanitize) */
static const char *loader_path(void)
{
	const char *p = getenv("BKEY_LOADER");

	return p && *p ? p : "./loader";
}
#define LOADER	loader_path()
#define EX3	"key_u64s=2 bits=40,40,0,12,0,0 offsets=0x100000000,0,0xffffffff,0,0,0"

static char tmpdir[64];

static bool have_loader(void)
{
	if (access(LOADER, X_OK)) {
		test__skip("%s not built (run from the repository root after make)", LOADER);
		return false;
	}
	if (!tmpdir[0]) {
		strcpy(tmpdir, "/tmp/bkey-cli.XXXXXX");
		if (!mkdtemp(tmpdir)) {
			tmpdir[0] = 0;
			test__skip("no temporary directory");
			return false;
		}
	}
	return true;
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = malloc(n + 1);
	if (buf && fread(buf, 1, n, f) != (size_t)n) {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	if (buf)
		buf[n] = 0;
	if (len)
		*len = n;
	return buf;
}

/* Runs "LOADER args" with stderr captured; returns the exit status. */
static int run_loader(const char *args, char **err)
{
	char cmd[1024], path[128];
	int st;

	snprintf(path, sizeof(path), "%s/stderr", tmpdir);
	snprintf(cmd, sizeof(cmd), "%s %s 2>%s", LOADER, args, path);
	st = system(cmd);
	if (err)
		*err = slurp(path, NULL);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* A shell command's standard output, or NULL. */
static char *run_cmd_out(const char *cmd)
{
	FILE *f = popen(cmd, "r");
	size_t cap = 1 << 16, n = 0;
	char *buf = malloc(cap);

	if (!f || !buf) {
		if (f)
			pclose(f);
		free(buf);
		return NULL;
	}
	while ((n += fread(buf + n, 1, cap - 1 - n, f)) == cap - 1) {
		char *b = realloc(buf, cap *= 2);

		if (!b)
			break;
		buf = b;
	}
	pclose(f);
	buf[n] = 0;
	return buf;
}

static bool write_file(const char *path, const void *p, size_t len)
{
	FILE *f = fopen(path, "wb");
	bool ok = f && fwrite(p, 1, len, f) == len;

	if (f)
		fclose(f);
	return ok;
}

static void bad_inputs(void)
{
	char args[512], in[128], *err = NULL;
	uint64_t w[4] = {};

	ASSERT_EQ(run_loader("gen --format 'key_u64s=1 bits=0,0,33,0,0,0 offsets=0,0,0,0,0,0'", &err),
		  2, "invalid format: status 2");
	ASSERT_HAS_SUBSTR(err, "field snapshot: bits=33", "names field and value");
	free(err);
	ASSERT_EQ(run_loader("unpack --format 'key_u64s=3 bits=8,8,0,0,0,0 offsets=0,0,0,0,0,0' "
			     "--in /dev/null", &err), 2, "key_u64s mismatch: status 2");
	ASSERT_HAS_SUBSTR(err, "rule key_u64s", "names the rule");
	free(err);
	ASSERT_EQ(run_loader("unpack --format 'key_u64s=1 bits=1,2' --in /dev/null", &err), 2,
		  "unparsable format");
	ASSERT_HAS_SUBSTR(err, "bits", "names the token");
	free(err);

	/* a key running past the end: nothing is loaded, status 2 */
	snprintf(in, sizeof(in), "%s/past_end.bin", tmpdir);
	((uint8_t *)&w[0])[0] = 3;	/* packed key of 2 words + 1 value word */
	((uint8_t *)&w[3])[0] = 4;	/* 4 words, but only 1 left */
	write_file(in, w, sizeof(w));
	snprintf(args, sizeof(args), "unpack --format '" EX3 "' --in %s", in);
	ASSERT_EQ(run_loader(args, &err), 2, "past end: status 2");
	ASSERT_HAS_SUBSTR(err, "key 1 at byte 24", "names the key");
	ASSERT_HAS_SUBSTR(err, "runs past the end", "names the problem");
	free(err);

	/* u64s smaller than the key */
	((uint8_t *)&w[3])[0] = 1;
	write_file(in, w, sizeof(w));
	ASSERT_EQ(run_loader(args, &err), 2, "short key: status 2");
	ASSERT_HAS_SUBSTR(err, "u64s smaller than the key", "names the problem");
	free(err);

	/* not a whole number of words */
	write_file(in, w, 13);
	ASSERT_EQ(run_loader(args, &err), 2, "13 bytes: status 2");
	ASSERT_HAS_SUBSTR(err, "13 bytes", "names the length");
	free(err);
}

/* No capabilities: one clear line naming them, status 1. */
static void no_caps(void)
{
	char cmd[512], path[128], *err;
	int st;

	if (access("/usr/bin/setpriv", X_OK)) {
		test__skip("setpriv (util-linux) not installed");
		return;
	}
	snprintf(path, sizeof(path), "%s/stderr", tmpdir);
	snprintf(cmd, sizeof(cmd), "setpriv --bounding-set=-all --inh-caps=-all -- %s "
		 "unpack --format '" EX3 "' --in /dev/null 2>%s", LOADER, path);
	st = system(cmd);
	err = slurp(path, NULL);
	ASSERT_EQ(WIFEXITED(st) ? WEXITSTATUS(st) : -1, 1, "status 1");
	ASSERT_HAS_SUBSTR(err, "missing capability CAP_BPF", "names CAP_BPF");
	free(err);
	snprintf(cmd, sizeof(cmd), "setpriv --bounding-set=-all --inh-caps=-all -- %s "
		 "--keys 1000 2>%s", LOADER, path);
	st = system(cmd);
	err = slurp(path, NULL);
	ASSERT_EQ(WIFEXITED(st) ? WEXITSTATUS(st) : -1, 1, "main job without caps: status 1");
	ASSERT_HAS_SUBSTR(err, "missing capability CAP_BPF", "main job names the capability");
	ASSERT_HAS_SUBSTR(err, "and CAP_PERFMON (", "names CAP_PERFMON");
	ASSERT_FALSE(err && strstr(err, "NET_ADMIN"), "never asks for CAP_NET_ADMIN");
	ASSERT_EQ(strchr(err ? err : "", '\n') - (err ? err : ""), strlen(err ? err : "") - 1,
		  "one line");
	free(err);

	/* CAP_BPF alone: CAP_PERFMON is named, CAP_BPF is not */
	snprintf(cmd, sizeof(cmd), "setpriv --reuid=65534 --regid=65534 --clear-groups "
		 "--inh-caps=-all,+bpf --ambient-caps=+bpf -- %s --keys 1000 2>%s", LOADER, path);
	st = system(cmd);
	err = slurp(path, NULL);
	ASSERT_EQ(WIFEXITED(st) ? WEXITSTATUS(st) : -1, 1, "CAP_BPF alone: status 1");
	ASSERT_HAS_SUBSTR(err, "missing capability CAP_PERFMON (", "names CAP_PERFMON alone");
	free(err);

	/* gen needs no privileges */
	snprintf(cmd, sizeof(cmd), "setpriv --bounding-set=-all --inh-caps=-all -- %s "
		 "gen --format '" EX3 "' >/dev/null 2>%s", LOADER, path);
	st = system(cmd);
	ASSERT_EQ(WIFEXITED(st) ? WEXITSTATUS(st) : -1, 0, "gen without capabilities");
}

/*
 * A random stream larger than one run (the loader splits it): the bpf
 * engine's output equals the reference's, and the reference equals the
 * model key by key.
 */
static void bpf_equals_ref(struct kenv *k)
{
	static uint64_t words[3 * BK_IN_CAP_WORDS / 2];
	struct bkey_format f = ex3_format();
	char args[512], in[128], out_ref[128], out_bpf[128], *err = NULL;
	uint64_t seed = 0x5eed0201;
	char *a, *b;
	size_t la, lb, pos = 0, off = 0;
	unsigned nr_keys;
	uint32_t n = rnd_stream(&seed, &f, 20000, words,
				sizeof(words) / sizeof(words[0]), &nr_keys);

	ASSERT_GT(n, BK_IN_CAP_WORDS, "stream needs more than one run");
	snprintf(in, sizeof(in), "%s/stream.bin", tmpdir);
	snprintf(out_ref, sizeof(out_ref), "%s/out_ref.bin", tmpdir);
	snprintf(out_bpf, sizeof(out_bpf), "%s/out_bpf.bin", tmpdir);
	write_file(in, words, 8 * (size_t)n);

	snprintf(args, sizeof(args), "unpack --format '" EX3 "' --engine ref --in %s --out %s",
		 in, out_ref);
	ASSERT_EQ(run_loader(args, NULL), 0, "ref engine");
	snprintf(args, sizeof(args), "unpack --format '" EX3 "' --in %s --out %s -j", in, out_bpf);
	ASSERT_EQ(run_loader(args, &err), 0, "bpf engine");
	ASSERT_HAS_SUBSTR(err, "\"runs\":2", "two runs");
	free(err);

	a = slurp(out_ref, &la);
	b = slurp(out_bpf, &lb);
	if (ASSERT_TRUE(a && b, "outputs") && ASSERT_EQ(la, lb, "same length"))
		ASSERT_TRUE(!memcmp(a, b, la), "bpf output == ref output");
	/* the reference output is 40-byte keys, each followed by its value */
	while (a && pos < n && off + 40 <= la) {
		struct bkey want;
		unsigned kw = bkey_format_byte(&words[pos]) ? 5 : f.key_u64s;
		unsigned val = ((uint8_t *)&words[pos])[0] - kw;

		bkey_unpack_key(&f, &words[pos], &want);
		if (!ASSERT_MEMEQ(a + off, &want, 40, "key") ||
		    !ASSERT_MEMEQ(a + off + 40, &words[pos + kw], 8 * val, "value"))
			break;
		off += 40 + 8 * val;
		pos += kw + val;
	}
	ASSERT_EQ(pos, n, "every key written");
	free(a);
	free(b);
	(void)k;
}

static void gen_json(void)
{
	char args[512], path[128], *out;

	snprintf(path, sizeof(path), "%s/gen.json", tmpdir);
	snprintf(args, sizeof(args), "gen --format '" EX3 "' -j >%s", path);
	ASSERT_EQ(run_loader(args, NULL), 0, "gen -j");
	out = slurp(path, NULL);
	ASSERT_HAS_SUBSTR(out, "\"name\":\"bk2_b703712439a\"", "name");
	ASSERT_HAS_SUBSTR(out, "inode: K[88..127] = w1[24..63]", "lines");
	ASSERT_HAS_SUBSTR(out, "\"walk\":\"u64s\"", "the stream walk by default");
	free(out);

	/* the table walk: its program reads the table from the ctl value */
	snprintf(args, sizeof(args), "gen --format '" EX3 "' --walk table -j >%s", path);
	ASSERT_EQ(run_loader(args, NULL), 0, "gen --walk table -j");
	out = slurp(path, NULL);
	ASSERT_HAS_SUBSTR(out, "\"walk\":\"table\"", "walk");
	ASSERT_HAS_SUBSTR(out, "key i at in + 8*tab[i]", "the table walk's line");
	free(out);
	ASSERT_EQ(run_loader("gen --format '" EX3 "' --walk sideways", &out), 2, "bad --walk");
	ASSERT_HAS_SUBSTR(out, "--walk: unknown walk \"sideways\"", "names the value");
	free(out);

	/* -o: an object file (tests/test_obj.c loads them), nothing else printed */
	snprintf(args, sizeof(args), "gen --format '" EX3 "' -o %s/ex3.bpf.o -j >%s", tmpdir, path);
	ASSERT_EQ(run_loader(args, NULL), 0, "gen -o -j");
	out = slurp(path, NULL);
	ASSERT_HAS_SUBSTR(out, "\"object\":\"", "names the file");
	ASSERT_FALSE(out && strstr(out, "\"listing\""), "no listing");
	free(out);
	snprintf(args, sizeof(args), "%s/ex3.bpf.o", tmpdir);
	out = slurp(args, NULL);
	ASSERT_TRUE(out && !memcmp(out, "\177ELF", 4), "an ELF file");
	free(out);
	ASSERT_EQ(run_loader("gen --format '" EX3 "' -o /nonexistent/dir/x.bpf.o", &out), 1,
		  "gen -o into no directory");
	ASSERT_HAS_SUBSTR(out, "cannot write /nonexistent/dir/x.bpf.o: No such file or directory",
			  "names the file and why");
	free(out);
	snprintf(args, sizeof(args), "gen --format '" EX3 "' --walk table --shape bpf_loop >%s",
		 path);
	ASSERT_EQ(run_loader(args, NULL), 0, "the table walk in the bpf_loop shape");
	out = slurp(path, NULL);
	ASSERT_HAS_SUBSTR(out, "bpf_loop shape, walk by table", "names both");
	ASSERT_HAS_SUBSTR(out, "callback: up to 1 keys per call", "its callback");
	free(out);
	ASSERT_EQ(run_loader("dump --format '" EX3 "' --kind lookup --walk table", &out), 2,
		  "dump: --walk with a lookup program");
	ASSERT_HAS_SUBSTR(out, "--walk chooses an unpack program", "says why");
	free(out);
}

static int count_progs(void);

static unsigned count_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	unsigned n = 0;

	while (d && (de = readdir(d)))
		n += de->d_name[0] != '.';
	if (d)
		closedir(d);
	return n;
}

/*
 * lookup --pin DIR, then lookup and scan --pinned DIR answer as the tree
 * built from the keys does; pinning over a tree fails whole; a tree
 * corrupted through bpffs (nodes, meta) gives an error, never a crash or
 * a hang.
 */
static void pinned_tree(const char *keys, const char *queries, const char *expect,
			const struct bk_keyset *ks, uint64_t *seed)
{
	char mnt[] = "/tmp/bkey-pin.XXXXXX", dir[64], dir2[64], path[128], args[512], cmd[1024];
	char out[128], *err = NULL, *a, *b;
	int before = count_progs(), fd, nodes_fd = -1, meta_fd = -1, st;
	unsigned i, crashes = 0, failed = 0, answered = 0, nr_objs;
	size_t la, lb, vsize, nodes_len, page;
	struct bpf_map_info info = {};
	__u32 info_len = sizeof(info);
	uint8_t *nodes;

	if (!mount_bpffs(mnt))
		return;
	snprintf(dir, sizeof(dir), "%s/t", mnt);
	snprintf(dir2, sizeof(dir2), "%s/t2", mnt);
	snprintf(out, sizeof(out), "%s/pinned.out", tmpdir);
	mkdir(dir, 0700);
	mkdir(dir2, 0700);
	snprintf(args, sizeof(args), "lookup --keys %s --node-size 1024 --pin %s >%s", keys, dir, out);
	if (!ASSERT_EQ(run_loader(args, &err), 0, "lookup --pin"))
		fprintf(stderr, "%s", err);
	free(err);
	a = slurp(out, NULL);
	ASSERT_HAS_SUBSTR(a, "pinned the tree of", "says what it pinned");
	free(a);
	nr_objs = count_dir(dir);
	ASSERT_GE(nr_objs, 9, "objects pinned: meta, six maps, a lookup and a scan program");

	/* the same answers from another process, with no key file */
	snprintf(args, sizeof(args), "lookup --pinned %s <%s >%s", dir, queries, out);
	ASSERT_EQ(run_loader(args, &err), 0, "lookup --pinned");
	free(err);
	a = slurp(out, &la);
	b = slurp(expect, &lb);
	if (ASSERT_TRUE(a && b, "outputs") && ASSERT_EQ(la, lb, "pinned: same length"))
		ASSERT_TRUE(!memcmp(a, b, la), "pinned: every answer equals the reference");
	free(a);
	free(b);
	snprintf(args, sizeof(args), "lookup --pinned %s --keys %s <%s >/dev/null", dir, keys, queries);
	ASSERT_EQ(run_loader(args, NULL), 0, "lookup --pinned --keys: every answer checked");
	/* four processes at once, each on a run slot of its own: each answers right */
	snprintf(cmd, sizeof(cmd), "for i in 1 2 3 4; do %s lookup --pinned %s --keys %s <%s "
		 ">%s/par.$i 2>&1 & done; wait", LOADER, dir, keys, queries, tmpdir);
	ASSERT_EQ(system(cmd), 0, "four lookups --pinned at once");
	for (i = 1; i <= 4; i++) {
		snprintf(path, sizeof(path), "%s/par.%u", tmpdir, i);
		a = slurp(path, &la);
		b = slurp(expect, &lb);
		if (ASSERT_TRUE(a && b, "outputs") && ASSERT_EQ(la, lb, "at once: same length"))
			ASSERT_TRUE(!memcmp(a, b, la), "at once: every answer equals the reference");
		free(a);
		free(b);
	}
	{
		const struct bkey *kk = &ks->keys[ks->nr / 3].k;
		char out2[128];

		snprintf(out2, sizeof(out2), "%s/scan.out", tmpdir);
		snprintf(args, sizeof(args), "scan --keys %s --node-size 1024 --from %llu:%llu:0 "
			 "--count 500 >%s", keys, (unsigned long long)kk->inode,
			 (unsigned long long)kk->offset, out2);
		ASSERT_EQ(run_loader(args, NULL), 0, "scan");
		snprintf(args, sizeof(args), "scan --pinned %s --keys %s --from %llu:%llu:0 --count 500 "
			 ">%s", dir, keys, (unsigned long long)kk->inode,
			 (unsigned long long)kk->offset, out);
		ASSERT_EQ(run_loader(args, NULL), 0, "scan --pinned");
		a = slurp(out, &la);
		b = slurp(out2, &lb);
		if (ASSERT_TRUE(a && b, "outputs") && ASSERT_EQ(la, lb, "pinned scan: same length"))
			ASSERT_TRUE(!memcmp(a, b, la), "pinned scan equals the scan");
		free(a);
		free(b);
	}

	/* pinning again over it fails whole, and leaves the tree as it was */
	snprintf(args, sizeof(args), "lookup --keys %s --node-size 1024 --pin %s", keys, dir);
	ASSERT_EQ(run_loader(args, &err), 1, "pin over a pinned tree");
	ASSERT_HAS_SUBSTR(err, "File exists", "says why");
	free(err);
	ASSERT_EQ(count_dir(dir), nr_objs, "the pinned tree is as it was");
	/* an object in the way at the end (meta): what was pinned before it is unpinned */
	fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "in_the_way", 4, 4, 1, NULL);
	snprintf(path, sizeof(path), "%s/meta", dir2);
	ASSERT_OK(bpf_obj_pin(fd, path), "pin something as meta");
	close(fd);
	snprintf(args, sizeof(args), "lookup --keys %s --node-size 1024 --pin %s", keys, dir2);
	ASSERT_EQ(run_loader(args, &err), 1, "pin with meta in the way");
	ASSERT_HAS_SUBSTR(err, "meta", "names the object");
	free(err);
	ASSERT_EQ(count_dir(dir2), 1, "nothing half pinned: only what was there");

	/* a hostile writer of bpffs: random words in the nodes, and in meta */
	snprintf(path, sizeof(path), "%s/nodes", dir);
	nodes_fd = bpf_obj_get(path);
	snprintf(path, sizeof(path), "%s/meta", dir);
	meta_fd = bpf_obj_get(path);
	if (!ASSERT_GE(nodes_fd, 0, "open the pinned nodes") || !ASSERT_GE(meta_fd, 0, "meta") ||
	    !ASSERT_OK(bpf_obj_get_info_by_fd(nodes_fd, &info, &info_len), "nodes map info"))
		goto out;
	vsize = info.value_size;
	page = sysconf(_SC_PAGESIZE);
	nodes_len = ((size_t)vsize * info.max_entries + page - 1) / page * page;
	nodes = mmap(NULL, nodes_len, PROT_READ | PROT_WRITE, MAP_SHARED, nodes_fd, 0);
	if (!ASSERT_TRUE(nodes != MAP_FAILED, "mmap the pinned nodes"))
		goto out;
	snprintf(path, sizeof(path), "%s/q50", tmpdir);
	snprintf(cmd, sizeof(cmd), "head -50 %s >%s", queries, path);
	ASSERT_EQ(system(cmd), 0, "50 queries");
	for (i = 0; i < 300; i++) {
		uint32_t key = 0, node = rnd_below(seed, info.max_entries);
		uint64_t *w = (uint64_t *)(nodes + (size_t)node * vsize) +
			      rnd_below(seed, (vsize - 8) / 8), save = *w;
		struct bk_pin_meta meta, msave;
		uint32_t *mw = (uint32_t *)&meta;

		if (i % 10 == 9) {
			bpf_map_lookup_elem(meta_fd, &key, &msave);
			meta = msave;
			mw[rnd_below(seed, sizeof(meta) / 4)] ^= 1u << rnd_below(seed, 32);
			bpf_map_update_elem(meta_fd, &key, &meta, 0);
		} else {
			*w = rnd_below(seed, 3) ? rnd_next(seed) : *w ^ (1ull << rnd_below(seed, 64));
		}
		snprintf(args, sizeof(args), "lookup --pinned %s <%s >/dev/null 2>%s/perr", dir, path,
			 tmpdir);
		snprintf(cmd, sizeof(cmd), "timeout 30 %s %s", LOADER, args);
		st = system(cmd);
		if (!WIFEXITED(st) || (WEXITSTATUS(st) != 0 && WEXITSTATUS(st) != 1))
			crashes++;
		else if (WEXITSTATUS(st)) {
			char perr[128], *e;

			snprintf(perr, sizeof(perr), "%s/perr", tmpdir);
			e = slurp(perr, NULL);
			if (!ASSERT_TRUE(e && !strncmp(e, "loader: ", 8), "a refusal says why"))
				crashes++;
			free(e);
			failed++;
		}
		else
			answered++;
		if (i % 10 == 9)
			bpf_map_update_elem(meta_fd, &key, &msave, 0);
		else
			*w = save;
	}
	ASSERT_EQ(crashes, 0, "corrupted pinned tree: no crash, no hang, no other exit status");
	ASSERT_GT(failed, 0, "corruptions that were refused");
	printf("  pinned tree corrupted 300 times through bpffs: %u refused (exit 1), %u answered\n",
	       failed, answered);
	munmap(nodes, nodes_len);
out:
	if (nodes_fd >= 0)
		close(nodes_fd);
	if (meta_fd >= 0)
		close(meta_fd);
	snprintf(cmd, sizeof(cmd), "rm -rf %s %s && umount %s && rmdir %s", dir, dir2, mnt, mnt);
	ASSERT_EQ(system(cmd), 0, "unpin");
	ASSERT_EQ(count_progs(), before, "unpinned: nothing left");
}

/* loader lookup on a random key file: every answer as the reference says. */
static void lookup_cmd(struct kenv *k)
{
	char keys[128], queries[128], out[128], expect[128], args[512], *a, *b, *err = NULL;
	uint64_t seed = 0x5eed0801, val[3] = { 7, 8, 9 };
	struct bk_keyset ks = {};
	struct bpos p = { 100, 0, 0 };
	FILE *fk, *fq, *fe;
	size_t i, la, lb;
	char msg[100];

	snprintf(keys, sizeof(keys), "%s/keys.txt", tmpdir);
	snprintf(queries, sizeof(queries), "%s/queries.txt", tmpdir);
	snprintf(out, sizeof(out), "%s/lookup.out", tmpdir);
	snprintf(expect, sizeof(expect), "%s/lookup.expect", tmpdir);
	fk = fopen(keys, "w");
	for (i = 0; i < 20000; i++) {
		struct bkey key = { .format_nw = KEY_FORMAT_CURRENT, .type = 1 + rnd_below(&seed, 20) };

		if (!rnd_below(&seed, 30)) {
			p.inode += 1 + rnd_below(&seed, 1000);
			p.offset = 0;
		}
		p.offset += 1 + rnd_below(&seed, 5000);
		key.inode = p.inode;
		key.offset = p.offset;
		key.snapshot = rnd_below(&seed, 3) ? UINT32_MAX : rnd_below(&seed, 100);
		key.size = rnd_below(&seed, 128);
		key.u64s = BKEY_U64s + rnd_below(&seed, 4);
		bk_key_print(fk, &key, val);
		bk_keyset_add(&ks, &key, val);
	}
	fclose(fk);
	bk_keyset_sort(&ks, msg, sizeof(msg));

	fq = fopen(queries, "w");
	fe = fopen(expect, "w");
	for (i = 0; i < 3000; i++) {
		const struct bkey *kk = &ks.keys[rnd_below(&seed, ks.nr)].k;
		struct bpos q = { kk->inode, kk->offset, kk->snapshot };
		size_t want;

		if (i % 3 == 1)
			q.offset -= rnd_below(&seed, 3000);
		else if (i % 3 == 2)
			q = (struct bpos){ rnd_below(&seed, 200000), rnd_next(&seed), 0 };
		fprintf(fq, "%llu:%llu:%u\n", (unsigned long long)q.inode,
			(unsigned long long)q.offset, q.snapshot);
		want = bk_keyset_lower_bound(&ks, q);
		if (want == ks.nr)
			fprintf(fe, "none\n");
		else
			bk_key_print(fe, &ks.keys[want].k, bk_keyset_val(&ks, &ks.keys[want]));
	}
	fclose(fq);
	fclose(fe);

	snprintf(args, sizeof(args), "lookup --keys %s --node-size 1024 <%s >%s", keys, queries, out);
	ASSERT_EQ(run_loader(args, &err), 0, "lookup");
	free(err);
	a = slurp(out, &la);
	b = slurp(expect, &lb);
	if (ASSERT_TRUE(a && b, "outputs") && ASSERT_EQ(la, lb, "same length"))
		ASSERT_TRUE(!memcmp(a, b, la), "every answer equals the reference");
	free(a);
	free(b);
	pinned_tree(keys, queries, expect, &ks, &seed);

	/* scans from three places, one reaching the end of the tree */
	for (i = 0; i < 3; i++) {
		const struct bkey *kk = &ks.keys[i == 2 ? ks.nr - 10 : rnd_below(&seed, ks.nr)].k;
		size_t first, j;

		first = bk_keyset_lower_bound(&ks, (struct bpos){ kk->inode, kk->offset - 1, 0 });
		fe = fopen(expect, "w");
		for (j = first; j < ks.nr && j < first + 700; j++)
			bk_key_print(fe, &ks.keys[j].k, bk_keyset_val(&ks, &ks.keys[j]));
		fclose(fe);
		snprintf(args, sizeof(args), "scan --keys %s --node-size 1024 --from %llu:%llu:0 "
			 "--count 700 >%s", keys, (unsigned long long)kk->inode,
			 (unsigned long long)kk->offset - 1, out);
		ASSERT_EQ(run_loader(args, &err), 0, "scan");
		free(err);
		a = slurp(out, &la);
		b = slurp(expect, &lb);
		if (ASSERT_TRUE(a && b, "outputs") && ASSERT_EQ(la, lb, "scan length"))
			ASSERT_TRUE(!memcmp(a, b, la), "scan equals the reference");
		free(a);
		free(b);
	}

	/* a bad query line: status 2, the line number */
	fq = fopen(queries, "w");
	fprintf(fq, "1:2:3\n\n4:5\n");
	fclose(fq);
	snprintf(args, sizeof(args), "lookup --keys %s <%s", keys, queries);
	ASSERT_EQ(run_loader(args, &err), 2, "bad query");
	ASSERT_HAS_SUBSTR(err, "query line 3", "names the line");
	free(err);
	bk_keyset_free(&ks);
	(void)k;
}

/* Programs loaded on the machine, by id (no bpftool needed: the VMs have none). */
static int count_progs(void)
{
	__u32 id = 0;
	int n = 0;

	while (!bpf_prog_get_next_id(id, &id))
		n++;
	return errno == ENOENT ? n : -1;
}

/* The main job, small: JSON, every answer checked, nothing left behind. */
static void main_job(struct kenv *k)
{
	char args[512], *err = NULL, *out, path[128];
	int before = count_progs(), st;

	snprintf(path, sizeof(path), "%s/run.json", tmpdir);
	snprintf(args, sizeof(args), "--keys 20000 --lookups 4000 --scans 10 --scan-len 200 "
		 "--node-size 4096 --threads 2 -j >%s", path);
	ASSERT_EQ(run_loader(args, &err), 0, "run");
	free(err);
	out = slurp(path, NULL);
	ASSERT_HAS_SUBSTR(out, "\"name\":\"extents\"", "three btrees");
	ASSERT_HAS_SUBSTR(out, "\"name\":\"dirents\"", "dirents");
	ASSERT_HAS_SUBSTR(out, "\"threads\":2,", "two threads");
	ASSERT_HAS_SUBSTR(out, "\"threaded_lookups_per_s\":", "threaded lookups reported");
	ASSERT_HAS_SUBSTR(out, "],\"mismatches\":0}", "no mismatches");
	free(out);
	ASSERT_EQ(count_progs(), before, "nothing left loaded");
	ASSERT_EQ(run_loader("--threads 0", &err), 2, "--threads 0: a usage error");
	ASSERT_HAS_SUBSTR(err, "--threads must be in 1..64", "names the range");
	free(err);

	/* the node search's loop by BKEY_SEARCH: callbacks where the kernel has them */
	setenv("BKEY_SEARCH", "bogus", 1);
	ASSERT_EQ(run_loader("--keys 2000", &err), 1, "BKEY_SEARCH=bogus: status 1");
	ASSERT_HAS_SUBSTR(err, "BKEY_SEARCH=bogus: not one of may_goto, unrolled, bpf_loop",
			  "names the variable and value");
	free(err);
	if (k->ft.bpf_loop && k->ft.tail_call_subprog) {
		setenv("BKEY_SEARCH", "bpf_loop", 1);
		snprintf(args, sizeof(args), "--keys 20000 --lookups 4000 --node-size 4096 -j >%s",
			 path);
		ASSERT_EQ(run_loader(args, &err), 0, "BKEY_SEARCH=bpf_loop: run");
		free(err);
		out = slurp(path, NULL);
		ASSERT_HAS_SUBSTR(out, "\"loops\":\"bpf_loop+", "the search in bpf_loop callbacks");
		ASSERT_HAS_SUBSTR(out, "],\"mismatches\":0}", "no mismatches");
		free(out);
	}
	unsetenv("BKEY_SEARCH");

	/* Ctrl-C in the middle: exit 130, nothing left loaded */
	snprintf(args, sizeof(args), "%s --keys 400000 --lookups 2000000 >/dev/null 2>&1 & "
		 "pid=$!; sleep 1.5; kill -INT $pid; wait $pid", LOADER);
	st = system(args);
	ASSERT_EQ(WIFEXITED(st) ? WEXITSTATUS(st) : -1, 130, "interrupted");
	ASSERT_EQ(count_progs(), before, "nothing left loaded after Ctrl-C");
}

/*
 * Least privilege: an unprivileged user with CAP_BPF and CAP_PERFMON, and
 * nothing else, runs the main job and the bpf unpack engine; the answers
 * are checked as ever.
 */
static void least_privilege(struct kenv *k)
{
	char cmd[768], path[128], *out, *err;
	int st;

	if (access("/usr/bin/setpriv", X_OK)) {
		test__skip("setpriv (util-linux) not installed");
		return;
	}
	snprintf(path, sizeof(path), "%s/lp", tmpdir);
	snprintf(cmd, sizeof(cmd), "setpriv --reuid=65534 --regid=65534 --clear-groups "
		 "--inh-caps=-all,+bpf,+perfmon --ambient-caps=+bpf,+perfmon -- %s "
		 "--keys 20000 --lookups 4000 --scans 10 --scan-len 200 --node-size 4096 -j "
		 ">%s.json 2>%s.err", LOADER, path, path);
	st = system(cmd);
	snprintf(cmd, sizeof(cmd), "%s.err", path);
	err = slurp(cmd, NULL);
	ASSERT_EQ(WIFEXITED(st) ? WEXITSTATUS(st) : -1, 0, "main job as nobody with CAP_BPF, CAP_PERFMON");
	if (err && *err)
		fprintf(stderr, "%s", err);
	free(err);
	snprintf(cmd, sizeof(cmd), "%s.json", path);
	out = slurp(cmd, NULL);
	ASSERT_HAS_SUBSTR(out, "],\"mismatches\":0}", "no mismatches");
	free(out);

	snprintf(cmd, sizeof(cmd), "setpriv --reuid=65534 --regid=65534 --clear-groups "
		 "--inh-caps=-all,+bpf,+perfmon --ambient-caps=+bpf,+perfmon -- %s demo "
		 ">%s.demo 2>&1", LOADER, path);
	st = system(cmd);
	ASSERT_EQ(WIFEXITED(st) ? WEXITSTATUS(st) : -1, 0, "demo as nobody with CAP_BPF, CAP_PERFMON");
}

/* --pin: bpftool sees the programs after exit; dump disassembles them. */
static void pin_and_dump(struct kenv *k)
{
	char mnt[] = "/tmp/bkey-bpffs.XXXXXX", dir[64], args[512], *err = NULL, *out, cmd[300];
	int before = count_progs();

	/* a private bpffs, whatever the machine has mounted */
	if (!mkdtemp(mnt)) {
		test__skip("no temporary directory for a bpffs");
		return;
	}
	snprintf(cmd, sizeof(cmd), "mount -t bpf bpf %s 2>/dev/null", mnt);
	if (system(cmd)) {
		rmdir(mnt);
		test__skip("cannot mount a bpffs (mount -t bpf): not root, or no bpffs");
		return;
	}
	snprintf(dir, sizeof(dir), "%s/pins", mnt);
	mkdir(dir, 0700);
	snprintf(args, sizeof(args), "--keys 5000 --lookups 1000 --scans 2 --node-size 4096 "
		 "--pin %s >/dev/null", dir);
	ASSERT_EQ(run_loader(args, &err), 0, "run --pin");
	free(err);
	/* each btree of the main job is a pinned tree another process can query */
	snprintf(args, sizeof(args), "lookup --pinned %s/extents </dev/null", dir);
	ASSERT_EQ(run_loader(args, &err), 0, "lookup --pinned DIR/extents after run --pin");
	free(err);
	snprintf(cmd, sizeof(cmd), "echo 4096:0:0 | %s lookup --pinned %s/inodes", LOADER, dir);
	out = run_cmd_out(cmd);
	ASSERT_TRUE(out && (strstr(out, "none") || strstr(out, "size=")), "an answer from DIR/inodes");
	free(out);
	if (system("command -v bpftool >/dev/null 2>&1")) {
		printf("  (no bpftool: the pins are not shown through it)\n");
	} else {
		snprintf(cmd, sizeof(cmd), "bpftool prog show pinned %s/inodes/lookup_0 2>&1", dir);
		out = run_cmd_out(cmd);
		ASSERT_HAS_SUBSTR(out, "bl", "bpftool shows the pinned lookup program");
		free(out);
		snprintf(cmd, sizeof(cmd), "bpftool prog dump xlated pinned %s/inodes/scan_0 linum 2>&1",
			 dir);
		out = run_cmd_out(cmd);
		ASSERT_HAS_SUBSTR(out, "key i at in + 8*tab[i]", "linum lines of the pinned scan program");
		free(out);
	}
	/* dump shows JIT'd code: with the interpreter there is none, and it says so */
	snprintf(args, sizeof(args), "dump --pinned %s/inodes/lookup_0 >%s/dump.txt", dir, tmpdir);
	if (k->ft.jit) {
		ASSERT_EQ(run_loader(args, NULL), 0, "dump --pinned");
		snprintf(cmd, sizeof(cmd), "%s/dump.txt", tmpdir);
		out = slurp(cmd, NULL);
		ASSERT_HAS_SUBSTR(out, "bytes of JIT'd code", "dump header");
		free(out);
	} else {
		ASSERT_EQ(run_loader(args, &err), 1, "dump --pinned without the JIT");
		ASSERT_HAS_SUBSTR(err, "JIT", "says the JIT is off");
		free(err);
	}
	snprintf(cmd, sizeof(cmd), "rm -rf %s && umount %s && rmdir %s", dir, mnt, mnt);
	ASSERT_EQ(system(cmd), 0, "unpin");
	ASSERT_EQ(count_progs(), before, "unpinned: nothing left");

	ASSERT_EQ(run_loader("dump --format '" EX3 "' >/dev/null", NULL), k->ft.jit ? 0 : 1,
		  "dump --format (1: no JIT'd code with the interpreter)");
	ASSERT_EQ(run_loader("--pin /tmp", &err), 2, "--pin outside bpffs");
	ASSERT_HAS_SUBSTR(err, "not a directory on bpffs", "says why");
	free(err);
}

/* loader image on a real image: the report, the listing, bad input. */
static void image_cmd(void)
{
	char args[1024], img[600], bad[160], *err = NULL, *out;
	unsigned before = count_progs();

	snprintf(bad, sizeof(bad), "%s/junk.img", tmpdir);
	write_file(bad, "not bcachefs", 12);
	snprintf(args, sizeof(args), "image %s", bad);
	ASSERT_EQ(run_loader(args, &err), 2, "not an image: status 2");
	ASSERT_HAS_SUBSTR(err, "too short for a superblock", "says why");
	free(err);
	snprintf(img, sizeof(img), "%s/data/bcachefs/images/include4k.img.zst", env_shared_dir);
	if (access(img, R_OK)) {
		fprintf(stderr, "  (%s absent: only the bad-input cases ran)\n", img);
		return;
	}
	snprintf(args, sizeof(args), "%s image -j --rounds 1 --scans 10 --btree inodes %s",
		 LOADER, img);
	out = run_cmd_out(args);
	ASSERT_HAS_SUBSTR(out, "\"name\":\"inodes\",\"nodes\":273,\"bsets\":556,\"keys\":7507",
			  "inodes: nodes, bsets, keys");
	ASSERT_HAS_SUBSTR(out, "\"live\":4418,\"formats\":270,\"shapes\":3,\"programs\":6",
			  "live keys, formats, shapes: two programs per shape");
	ASSERT_HAS_SUBSTR(out, "\"mismatches\":0", "no mismatches");
	free(out);
	snprintf(args, sizeof(args), "%s image --list-ondisk --btree lru %s", LOADER, img);
	out = run_cmd_out(args);
	ASSERT_HAS_SUBSTR(out, "lru l 0 POS_MIN..SPOS_MAX seq ", "node line");
	ASSERT_HAS_SUBSTR(out, "\n  offset 0 version 27, journal seq ", "bset line");
	ASSERT_HAS_SUBSTR(out, "\n    u64s 5 type set ", "key line");
	free(out);
	ASSERT_EQ(count_progs(), before, "nothing left loaded");
}

/*
 * loader kmod's refusals, each before anything is loaded.  The module
 * itself runs in the VM guests, which have one built for their kernel.
 */
static void kmod_cmd(struct kenv *k)
{
	char cmd[512], path[128], *err = NULL;
	int st, before = count_progs();

	ASSERT_EQ(run_loader("kmod", &err), 2, "no module: status 2");
	ASSERT_HAS_SUBSTR(err, "give the module's path", "says what is missing");
	free(err);
	ASSERT_EQ(run_loader("kmod --threads 9 x.ko", &err), 2, "--threads 9: status 2");
	ASSERT_HAS_SUBSTR(err, "--threads 9 (1..8)", "names the option and its range");
	free(err);
	ASSERT_EQ(run_loader("kmod --keys 1000 --nodes 1 /nonexistent/bkey_kmod.ko", &err), 1,
		  "a missing module: status 1");
	ASSERT_HAS_SUBSTR(err, "/nonexistent/bkey_kmod.ko: No such file", "names the file");
	free(err);
	/* not a module: the kernel refuses it (where a shape loads: else
	 * the loader stops before), and nothing stays loaded */
	ASSERT_EQ(run_loader("kmod --keys 1000 --nodes 1 /dev/null", &err), 1, "not a module: status 1");
	ASSERT_HAS_SUBSTR(err, k->ft.may_goto || k->ft.bpf_loop ? "kmod: loading /dev/null" :
			  "no supported shape", "names what failed");
	free(err);
	ASSERT_EQ(count_progs(), before, "nothing left loaded");

	if (access("/usr/bin/setpriv", X_OK)) {
		test__skip("setpriv (util-linux) not installed");
		return;
	}
	snprintf(path, sizeof(path), "%s/stderr", tmpdir);
	snprintf(cmd, sizeof(cmd), "setpriv --reuid=65534 --regid=65534 --clear-groups "
		 "--inh-caps=-all,+bpf,+perfmon --ambient-caps=+bpf,+perfmon -- %s kmod x.ko 2>%s",
		 LOADER, path);
	st = system(cmd);
	err = slurp(path, NULL);
	ASSERT_EQ(WIFEXITED(st) ? WEXITSTATUS(st) : -1, 1, "CAP_BPF and CAP_PERFMON only: status 1");
	ASSERT_HAS_SUBSTR(err, "missing capability CAP_SYS_MODULE", "names CAP_SYS_MODULE");
	free(err);
}

DEFINE_TEST(cli)
{
	struct kenv *k;

	if (test__start_subtest("bad_inputs") && have_loader())
		bad_inputs();
	if (test__start_subtest("no_caps") && have_loader())
		no_caps();
	if (test__start_subtest("gen_json") && have_loader())
		gen_json();
	if (test__start_subtest("kmod") && have_loader() && (k = kenv_get()))
		kmod_cmd(k);
	if (test__start_subtest("bpf_equals_ref") && have_loader() && (k = kenv_get()))
		bpf_equals_ref(k);
	/* the loader inherits BKEY_LOOPS: both loop shapes where the kernel has both */
	if (test__start_subtest("main_job") && have_loader() && (k = kenv_get()))
		kenv_each_loops(k, main_job);
	if (test__start_subtest("least_privilege") && have_loader() && (k = kenv_get()))
		kenv_each_loops(k, least_privilege);
	if (test__start_subtest("pin_and_dump") && have_loader() && (k = kenv_get())) {
		if (!k->ft.may_goto && !k->ft.bpf_loop)
			test__skip("no shape can walk a node: neither may_goto (6.9+) nor bpf_loop with the JIT");
		else
			pin_and_dump(k);
	}
	if (test__start_subtest("lookup") && have_loader() && (k = kenv_get()))
		kenv_each_loops(k, lookup_cmd);
	if (test__start_subtest("image") && have_loader() && (k = kenv_get())) {
		if (!k->ft.may_goto && !k->ft.bpf_loop)
			test__skip("no shape can walk a node: neither may_goto (6.9+) nor bpf_loop with the JIT");
		else
			image_cmd();
	}
	if (tmpdir[0]) {
		char cmd[128];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
		if (system(cmd))
			fprintf(stderr, "could not remove %s\n", tmpdir);
	}
}
