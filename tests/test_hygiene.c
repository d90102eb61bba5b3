// SPDX-License-Identifier: GPL-2.0
/*
 * Resource hygiene: thousands of load/unload cycles must not grow open
 * fds, this process's programs, maps and BTF objects, or its memory.  A
 * process holds a kernel object through an fd or a mapping (pins aside),
 * so these are counted in /proc/self: fds by kind and mmap'd maps.  Other
 * processes' objects neither hide a leak nor fake one.
 */
#include <dirent.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "test_progs.h"
#include "btree.h"
#include "kenv.h"
#include "nodecache.h"

struct counts {
	long	fds, progs, maps, btfs, map_mmaps, rss_kb;
};

/* This process's fds, and those that are BPF programs, maps, BTF objects. */
static void count_fds(struct counts *c)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;

	while (d && (de = readdir(d))) {
		char path[300], link[PATH_MAX];
		ssize_t n;

		if (de->d_name[0] == '.')
			continue;
		c->fds++;
		snprintf(path, sizeof(path), "/proc/self/fd/%s", de->d_name);
		n = readlink(path, link, sizeof(link) - 1);
		if (n < 0)
			continue;
		link[n] = 0;
		c->progs += !strcmp(link, "anon_inode:bpf-prog");
		c->maps += !strcmp(link, "anon_inode:bpf-map");
		c->btfs += !strcmp(link, "anon_inode:btf");
	}
	if (d)
		closedir(d);
}

/* Mappings of BPF maps: each holds its map without an fd. */
static long count_map_mmaps(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	long n = 0;

	while (f && fgets(line, sizeof(line), f))
		n += strstr(line, "anon_inode:bpf-map") != NULL;
	if (f)
		fclose(f);
	return n;
}

static long rss_kb(void)
{
	long pages = 0, rss = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (f && fscanf(f, "%ld %ld", &pages, &rss) != 2)
		rss = 0;
	if (f)
		fclose(f);
	return rss * (sysconf(_SC_PAGESIZE) / 1024);
}

static struct counts snapshot(void)
{
	struct counts c = { .map_mmaps = count_map_mmaps(), .rss_kb = rss_kb() };

	count_fds(&c);
	return c;
}

/* None may grow: this process's fds, objects and mappings exactly. */
static void assert_no_growth(const struct counts *before, const struct counts *after)
{
	ASSERT_EQ(after->fds, before->fds, "open fds");
	ASSERT_EQ(after->progs, before->progs, "program fds");
	ASSERT_EQ(after->maps, before->maps, "map fds");
	ASSERT_EQ(after->btfs, before->btfs, "BTF object fds");
	ASSERT_EQ(after->map_mmaps, before->map_mmaps, "mmap'd maps");
#ifdef __SANITIZE_ADDRESS__
	/* ASan's quarantine holds freed memory on purpose, so RSS grows;
	 * LeakSanitizer checks for leaks at exit instead (make sanitize) */
	printf("  RSS not compared under AddressSanitizer (LeakSanitizer checks leaks)\n");
#else
	ASSERT_LE(after->rss_kb - before->rss_kb, 512, "process memory (KiB)");
#endif
}

static void print_counts(const char *when, const struct counts *c)
{
	printf("  %-7s fds %ld (programs %ld, maps %ld, BTF objects %ld), mmap'd maps %ld, "
	       "RSS %ld KiB\n", when, c->fds, c->progs, c->maps, c->btfs, c->map_mmaps, c->rss_kb);
}

/* One cycle: generate, load, run, unload a program for a rotating format. */
static bool unpack_cycle(struct kenv *k, unsigned i, uint64_t *seed)
{
	static struct bk_prog p;
	static uint64_t words[64];
	struct bkey_format f = rnd_format(seed, -1, 0);
	struct bk_gen_opts o = {
		.shape = k->ft.best, .walk = i % 2 && k->ft.may_goto ? BK_WALK_TABLE : BK_WALK_U64S,
		.chunk = 1, .ctl_fd = k->rt.ctl_fd, .in_fd = k->rt.in_fd, .out_fd = k->rt.out_fd,
		.strict_align = bk_strict_align_default(),
	};
	struct bk_loaded l;
	unsigned nr;
	uint32_t n = rnd_stream(seed, &f, 4, words, 64, &nr), got = 0, status = ~0u;
	int ret;

	if (bk_gen_unpack(&f, &o, &p, NULL) || bk_prog_load(&p, &l, NULL, 0))
		return false;
	ret = bk_unpack_words(&l, &k->rt, words, n, &status, &got, NULL);
	bk_prog_unload(&l);
	return !ret && status == BK_OK && got == nr;
}

static void cycles(struct kenv *k)
{
	const char *env = getenv("BKEY_HYGIENE_CYCLES");
	unsigned long nr = env ? strtoul(env, NULL, 0) : 10000, i;
	uint64_t seed = 0x5eed0a01;
	struct counts before, after;
	bool ok = true;

	for (i = 0; i < 200; i++)		/* warm up: allocator, libbpf */
		unpack_cycle(k, i, &seed);
	before = snapshot();
	for (i = 0; i < nr && ok; i++)
		ok &= ASSERT_TRUE(unpack_cycle(k, i, &seed), "cycle");
	after = snapshot();
	print_counts("before", &before);
	print_counts("after", &after);
	assert_no_growth(&before, &after);
	test__count("load/unload cycles", i);
}

/* Whole btrees loaded into BPF and released, with lookups between. */
static void trees(struct kenv *k)
{
	uint64_t seed = 0x5eed0a02, val[2] = { 1, 2 };
	struct counts before, after;
	struct bk_keyset ks = {};
	struct bk_btree bt;
	struct bk_btree_opts o = { .node_size = 1024 };
	struct bk_result r;
	char err[200];
	unsigned i;

	for (i = 0; i < 3000; i++) {
		struct bkey key = { .u64s = 6, .format_nw = 1, .inode = 4096 + i / 50,
				    .offset = rnd_below(&seed, 1 << 20), .snapshot = UINT32_MAX };

		bk_keyset_add(&ks, &key, val);
	}
	bk_keyset_sort_dedup(&ks);
	if (!ASSERT_OK(bk_btree_build(&bt, &ks, &o, err, sizeof(err)), err))
		return;
	before = snapshot();
	for (i = 0; i < 50; i++) {
		struct bk_tree_rt t;

		if (i == 5)
			before = snapshot();	/* after warm-up, nothing loaded */
		if (!ASSERT_OK(bk_tree_load(&t, &bt, NULL, stderr), "tree load"))
			break;
		ASSERT_OK(bk_tree_lookup(&t, &(struct bpos){ 4100, 0, 0 }, 1, &r), "lookup");
		bk_tree_unload(&t);
	}
	after = snapshot();
	print_counts("before", &before);
	print_counts("after", &after);
	assert_no_growth(&before, &after);
	bk_btree_free(&bt);
	bk_keyset_free(&ks);
}

DEFINE_TEST(hygiene)
{
	struct kenv *k;

	if (test__start_subtest("load_unload_cycles") && (k = kenv_get()))
		cycles(k);
	if (test__start_subtest("tree_cycles") && (k = kenv_get()))
		kenv_each_loops(k, trees);
}
