// SPDX-License-Identifier: GPL-2.0
/*
 * The main job (sudo ./loader): the built-in workload's three btrees
 * built, loaded into BPF, looked up and scanned through prog runs, every
 * answer checked against a sorted array, and a report.
 */
#include <errno.h>
#include <limits.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "run.h"
#include "caps.h"
#include "nodecache.h"
#include "pin.h"
#include "util.h"
#include "workload.h"

#define BPF_FS_MAGIC	0xcafe4a11

struct run_opts {
	size_t		keys;
	unsigned	node_size;
	size_t		lookups;	/* per tree */
	size_t		scans;		/* per tree */
	size_t		scan_len;
	uint64_t	seed;
	bool		verify, json;
	const char	*pin;
	unsigned	threads;	/* runs at once, each on its own run slot */
};

#define MAX_THREADS	64

struct tree_report {
	const char	*name;
	size_t		keys, unpacked;
	uint32_t	nodes, leaves, depth, formats, shapes, programs;
	unsigned long	xlated, jited;
	double		prep_p50, prep_p99;	/* us per shape: lookup + scan programs */
	long long	prog_kernel_bytes;	/* memcg growth over its new shapes' loads */
	double		cached_node_ns;		/* p50: a node whose shape was cached */
	size_t		lookups, scanned;
	double		lookup_s, kernel_ns_per_lookup, scan_s;
	double		c_ns_per_lookup;	/* bk_btree_lookup() over the same nodes */
	unsigned long	runs;
	double		ref_lookup_s, ref_scan_s;
	/* the same lookups and scans again from 1, then o->threads threads
	 * at once, by the same code: [0] one thread, [1] o->threads */
	/* --threads: [0] one thread, [1] N threads; medians over the rounds */
	double		mt_lookups_per_s[2], mt_scan_keys_per_s[2];
	double		mt_lookup_x, mt_scan_x;	/* medians of the rounds' N/1 ratios */
	size_t		mismatches;
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	stop = sig;
}

/* A progress bar on a terminal, for phases that take over a second. */
struct progress {
	const char	*what;
	double		t0;
	bool		shown;
};

static void progress_start(struct progress *p, const char *what)
{
	p->what = what;
	p->t0 = bk_now_ns();
	p->shown = false;
}

static void progress(struct progress *p, size_t done, size_t total)
{
	int i, w = 30, fill;

	if (!isatty(2) || bk_now_ns() - p->t0 < 1e9 || !total)
		return;
	fill = (int)((double)done / total * w);
	fprintf(stderr, "\r  %-28s [", p->what);
	for (i = 0; i < w; i++)
		fputc(i < fill ? '#' : '.', stderr);
	fprintf(stderr, "] %3d%%", (int)(100.0 * done / total));
	p->shown = true;
}

static void progress_end(struct progress *p)
{
	if (p->shown)
		fprintf(stderr, "\r%*s\r", 72, "");
}

/* Queries: keys' own positions, just below keys, and random spots. */
static void make_queries(const struct bk_keyset *ks, uint64_t *seed, struct bpos *q, size_t n)
{
	const struct bkey *lo = &ks->keys[0].k, *hi = &ks->keys[ks->nr - 1].k;
	size_t i;

	for (i = 0; i < n; i++) {
		const struct bkey *k = &ks->keys[bk_rnd(seed) % ks->nr].k;

		switch (i % 4) {
		case 0:
		case 1:
			q[i] = (struct bpos){ k->inode, k->offset, k->snapshot };
			break;
		case 2:
			q[i] = (struct bpos){ k->inode, k->offset - 1, 0 };
			break;
		default:
			q[i] = (struct bpos){ lo->inode + bk_rnd(seed) % (hi->inode - lo->inode + 1),
					      bk_rnd(seed), bk_rnd(seed) };
		}
	}
}

static size_t check_lookups(const struct bk_keyset *ks, const struct bpos *q,
			    const struct bk_result *r, size_t n)
{
	size_t i, bad = 0;

	for (i = 0; i < n; i++)
		bad += !bk_keyset_answer_ok(ks, q[i], r[i].found, r[i].key);
	return bad;
}

/*
 * The same lookups in C over the same packed nodes: bcachefs's algorithm
 * with the model (bk_btree_lookup(), then the leaf key unpacked); each
 * answer must equal the kernel's in @res (else *mismatches).  Returns the
 * ns they took, or -1 if there is no memory to hold the answers.
 */
static double c_lookups(const struct bk_btree *bt, const struct bpos *q,
			const struct bk_result *res, size_t n, size_t *mismatches)
{
	struct bkey *k = malloc((n + 1) * sizeof(*k));
	bool *found = malloc(n + 1);
	double t0;
	size_t i;

	if (!k || !found) {
		free(k);
		free(found);
		return -1;
	}
	t0 = bk_now_ns();
	for (i = 0; i < n; i++) {
		uint32_t node, idx;

		found[i] = !bk_btree_lookup(bt, q[i], &node, &idx);
		if (found[i])
			bk_node_key(&bt->nodes[node], idx, &k[i]);
	}
	t0 = bk_now_ns() - t0;
	for (i = 0; i < n; i++)
		*mismatches += found[i] != !!res[i].found ||
			       (found[i] && memcmp(&k[i], res[i].key, sizeof(k[i])));
	free(k);
	free(found);
	return t0;
}

/* Whether tree @t has a node of shape @fid. */
static bool tree_uses(const struct bk_tree_rt *t, uint32_t fid)
{
	uint32_t i;

	for (i = 0; i < t->nr_loaded; i++)
		if (t->fid_of_node[i] == fid)
			return true;
	return false;
}

/* The tree pinned under DIR/@name (pin.h), or -errno with @err saying what failed. */
static int pin_tree(struct bk_tree_rt *t, const char *dir, const char *name, char *err,
		    size_t len)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (mkdir(path, 0700) && errno != EEXIST) {
		int ret = -errno;

		snprintf(err, len, "cannot make %s: %s", path, strerror(-ret));
		return ret;
	}
	return bk_tree_pin(t, path, err, len);
}

/* A tree loaded into the node cache: what its load cost and holds. */
static void load_report(const struct bk_tree_rt *t, struct tree_report *rep)
{
	const struct bk_node_cache *nc = t->nc;
	uint32_t i;

	rep->nodes = t->bt->nr_nodes;
	rep->leaves = t->bt->nr_leaves;
	rep->depth = t->bt->depth;
	for (i = 0; i < t->bt->nr_nodes; i++)
		rep->unpacked += t->bt->nodes[i].nr_unpacked;
	rep->formats = t->nr_formats;
	rep->shapes = t->nr_shapes;
	rep->programs = 2 * t->new_shapes;
	rep->prog_kernel_bytes = t->prog_kernel_bytes;
	rep->cached_node_ns = t->cached_node_load_ns;
	rep->prep_p50 = t->prepare_us_p50;
	rep->prep_p99 = t->prepare_us_p99;
	for (i = 0; i < nc->cache.nr; i++) {
		const struct bk_fmt_entry *e = &nc->cache.e[i];

		if (!tree_uses(t, i))
			continue;
		rep->xlated += e->lookup.xlated_insns + e->scan.xlated_insns;
		rep->jited += e->lookup.jited_bytes + e->scan.jited_bytes;
	}
}

static int run_threads(const char *name, const struct bk_keyset *ks, struct bk_tree_rt *t,
		       const struct run_opts *o, const struct bpos *q, const struct bpos *from,
		       struct tree_report *rep);

/*
 * Lookups and scans through tree @t (loaded), each answer checked; with
 * --threads, the same again from that many threads at once.
 */
static int run_tree(const char *name, const struct bk_keyset *ks, struct bk_tree_rt *t,
		    const struct run_opts *o, struct tree_report *rep)
{
	struct bpos *q = NULL, *from = NULL;
	struct bk_result *res = NULL;
	struct progress pg;
	uint64_t seed = o->seed ^ (uintptr_t)name[0];
	double t0, kernel_call_ns = 0, c_total_ns = 0;
	char err[300];
	size_t i, done;
	int ret = 0;

	if (o->pin) {
		char why[PATH_MAX + 200];

		ret = pin_tree(t, o->pin, name, why, sizeof(why));
		if (ret) {
			fprintf(stderr, "loader: %s\n", why);
			goto out;
		}
	}

	/* lookups, in batches, timed as a whole; the kernel's own time beside */
	q = calloc(o->lookups + 1, sizeof(*q));
	from = calloc(o->scans + 1, sizeof(*from));
	res = calloc(o->lookups > o->scan_len ? o->lookups : o->scan_len, sizeof(*res));
	if (!q || !from || !res) {
		fprintf(stderr, "loader: %s: no memory for the queries: %s\n", name, strerror(ENOMEM));
		ret = -ENOMEM;
		goto out;
	}
	make_queries(ks, &seed, q, o->lookups);
	/*
	 * Each batch in the kernel, then the same batch in C over the same
	 * packed nodes: the two share whatever else the machine is doing.
	 */
	progress_start(&pg, "lookups");
	for (done = 0; done < o->lookups && !stop; done += BK_BATCH) {
		size_t n = o->lookups - done < BK_BATCH ? o->lookups - done : BK_BATCH;
		double c_ns;

		t0 = bk_now_ns();
		ret = bk_tree_lookup(t, q + done, n, res + done);
		kernel_call_ns += bk_now_ns() - t0;
		if (ret) {
			bk_tree_bad_reason(t, err, sizeof(err));
			fprintf(stderr, "loader: %s: a lookup failed: %s\n", name, err);
			goto out;
		}
		c_ns = c_lookups(t->bt, q + done, res + done, n, &rep->mismatches);
		if (c_ns < 0) {
			fprintf(stderr, "loader: %s: no memory for the C lookups: %s\n", name,
				strerror(ENOMEM));
			ret = -ENOMEM;
			goto out;
		}
		c_total_ns += c_ns;
		progress(&pg, done + n, o->lookups);
	}
	rep->lookup_s = kernel_call_ns / 1e9;
	progress_end(&pg);
	rep->lookups = o->lookups;
	rep->runs = t->st.runs;
	rep->kernel_ns_per_lookup = o->lookups ? (double)t->st.run_ns / o->lookups : 0;
	rep->c_ns_per_lookup = o->lookups ? c_total_ns / o->lookups : 0;
	t0 = bk_now_ns();
	for (i = 0; i < o->lookups; i++)
		done = bk_keyset_lower_bound(ks, q[i]);
	rep->ref_lookup_s = (bk_now_ns() - t0) / 1e9;
	if (o->verify)
		rep->mismatches += check_lookups(ks, q, res, o->lookups);

	/* scans from random keys */
	progress_start(&pg, "scans");
	t0 = bk_now_ns();
	for (i = 0; i < o->scans && !stop; i++) {
		const struct bkey *k = &ks->keys[bk_rnd(&seed) % ks->nr].k;
		size_t got, first, j;

		from[i] = (struct bpos){ k->inode, k->offset, k->snapshot };
		ret = bk_tree_scan(t, from[i], o->scan_len, res, &got);
		if (ret) {
			char why[300];

			bk_tree_bad_reason(t, why, sizeof(why));
			fprintf(stderr, "loader: %s: a scan failed: %s\n", name, why);
			goto out;
		}
		rep->scanned += got;
		if (o->verify) {
			double v0 = bk_now_ns();

			first = bk_keyset_lower_bound(ks, from[i]);
			rep->mismatches += got != (ks->nr - first < o->scan_len ?
						   ks->nr - first : o->scan_len);
			for (j = 0; j < got; j++)
				rep->mismatches += memcmp(res[j].key, &ks->keys[first + j].k,
							  sizeof(struct bkey)) != 0;
			t0 += bk_now_ns() - v0;		/* checking is not scanning */
		}
		progress(&pg, i + 1, o->scans);
	}
	rep->scan_s = (bk_now_ns() - t0) / 1e9;
	progress_end(&pg);
	/* the reference scan: find the first, copy the keys */
	t0 = bk_now_ns();
	for (i = 0; i < o->scans; i++) {
		const struct bkey *k = &ks->keys[bk_rnd(&seed) % ks->nr].k;
		size_t first = bk_keyset_lower_bound(ks, (struct bpos){ k->inode, k->offset,
								       k->snapshot }), j;

		for (j = 0; j < o->scan_len && first + j < ks->nr; j++)
			memcpy(res[j].key, &ks->keys[first + j].k, sizeof(struct bkey));
	}
	rep->ref_scan_s = (bk_now_ns() - t0) / 1e9;
	ret = stop ? -EINTR : 0;
	if (!ret && o->threads > 1) {
		progress_start(&pg, "lookups and scans, threaded");
		ret = run_threads(name, ks, t, o, q, from, rep);
		progress_end(&pg);
	}
out:
	free(q);
	free(from);
	free(res);
	return ret;
}

/*
 * One thread of the concurrent phase: its share of the lookups, then of
 * the scans, on its own run slot; answers kept for the checks after the
 * threads are joined, so that the timed part is the runs alone.
 */
struct thread_job {
	pthread_t		tid;
	struct bk_tree_rt	*t;
	struct bk_worker	w;
	const struct bpos	*q;		/* its lookups */
	struct bk_result	*res;
	size_t			nq;
	const struct bpos	*from;		/* its scans' starts */
	struct bk_result	*scan_res;	/* scan_len per scan */
	size_t			*scan_got;
	size_t			nscans, scan_len;
	unsigned		lookup_passes, scan_passes;	/* made over its share */
	struct phases		*ph;
	int			ret;
};

/* Lookups, then scans, each begun by every thread together. */
struct phases {
	pthread_mutex_t	m;
	pthread_cond_t	c;
	int		phase;		/* 1: lookups, 2: scans */
	unsigned	lookups_done;	/* threads */
	double		until_ns;	/* the phase's passes end (bk_now_ns()) */
	bool		abort;
};

static void phase_wait(struct phases *ph, int phase)
{
	pthread_mutex_lock(&ph->m);
	while (ph->phase < phase)
		pthread_cond_wait(&ph->c, &ph->m);
	pthread_mutex_unlock(&ph->m);
}

/* Whether thread @j goes on: no failure, no abort, and (after one pass) time left. */
static bool thread_goes_on(const struct thread_job *j, unsigned passes)
{
	return !j->ph->abort && !j->ret && !stop &&
	       (!passes || bk_now_ns() < j->ph->until_ns);
}

static void *thread_run(void *arg)
{
	struct thread_job *j = arg;
	size_t i;

	phase_wait(j->ph, 1);
	for (j->lookup_passes = 0; thread_goes_on(j, j->lookup_passes); j->lookup_passes++)
		for (i = 0; i < j->nq && !j->ret; i += BK_BATCH)
			j->ret = bk_tree_lookup_on(j->t, &j->w, j->q + i,
						   j->nq - i < BK_BATCH ? j->nq - i : BK_BATCH,
						   j->res + i);
	pthread_mutex_lock(&j->ph->m);
	j->ph->lookups_done++;
	pthread_cond_broadcast(&j->ph->c);
	pthread_mutex_unlock(&j->ph->m);
	phase_wait(j->ph, 2);
	for (j->scan_passes = 0; thread_goes_on(j, j->scan_passes); j->scan_passes++)
		for (i = 0; i < j->nscans && !j->ret; i++)
			j->ret = bk_tree_scan_on(j->t, &j->w, j->from[i], j->scan_len,
						 j->scan_res + i * j->scan_len, &j->scan_got[i]);
	return NULL;
}

/*
 * Each phase of the threaded comparison repeats every thread's share
 * until this much time has passed (a whole pass at least), so that
 * thread start-up and one noisy moment weigh little.
 */
#define MT_PHASE_NS	200e6

/*
 * The lookups @q (n) and @nscans scans from @from again, from @nt threads
 * at once on tree @t, each thread on its own run slot, each phase repeated
 * (passes_for()): timed as a whole (lookups, then scans) into rep's
 * [@which] as seconds per pass, then every answer checked.  The answers
 * go to buffers written once before, so the timing is the runs' and not
 * first-touch page faults.
 */
static int run_concurrent(const char *name, const struct bk_keyset *ks, struct bk_tree_rt *t,
			  const struct run_opts *o, unsigned nt, const struct bpos *q, size_t n,
			  const struct bpos *from, size_t nscans, struct tree_report *rep,
			  double *lookups_per_s, double *scan_keys_per_s)
{
	size_t scanned = 0;
	unsigned k, started = 0;
	struct thread_job *jobs = calloc(nt, sizeof(*jobs));
	struct bk_result *res = calloc(n + 1, sizeof(*res));
	struct bk_result *sres = calloc(nscans * o->scan_len + 1, sizeof(*sres));
	size_t *sgot = calloc(nscans + 1, sizeof(*sgot)), i, j;
	struct phases ph = { .m = PTHREAD_MUTEX_INITIALIZER, .c = PTHREAD_COND_INITIALIZER };
	size_t looked_up = 0;
	double t0 = 0, t1 = 0, lookup_s = 0, scan_s = 0;
	char err[300];
	int ret = 0;

	if (!jobs || !res || !sres || !sgot) {
		ret = -ENOMEM;
		goto out;
	}
	memset(res, 0xff, n * sizeof(*res));
	memset(sres, 0xff, nscans * o->scan_len * sizeof(*sres));
	for (k = 0; k < nt; k++) {
		struct thread_job *jb = &jobs[k];
		size_t q0 = n * k / nt, q1 = n * (k + 1) / nt;
		size_t s0 = nscans * k / nt, s1 = nscans * (k + 1) / nt;

		*jb = (struct thread_job){ .t = t, .q = q + q0, .res = res + q0, .nq = q1 - q0,
					   .from = from + s0, .scan_res = sres + s0 * o->scan_len,
					   .scan_got = sgot + s0, .nscans = s1 - s0,
					   .scan_len = o->scan_len, .ph = &ph };
		ret = bk_worker_init(&jb->w, t->nc, k);
		if (!ret)
			ret = -pthread_create(&jb->tid, NULL, thread_run, jb);
		if (ret)
			break;
		started++;
	}
	/* go; a thread that could not start stops the others at once */
	pthread_mutex_lock(&ph.m);
	ph.abort = ret != 0;
	t0 = bk_now_ns();
	ph.until_ns = t0 + MT_PHASE_NS;
	ph.phase = 1;
	pthread_cond_broadcast(&ph.c);
	while (ph.lookups_done < started)
		pthread_cond_wait(&ph.c, &ph.m);
	t1 = bk_now_ns();
	ph.until_ns = t1 + MT_PHASE_NS;
	ph.phase = 2;
	pthread_cond_broadcast(&ph.c);
	pthread_mutex_unlock(&ph.m);
	for (k = 0; k < started; k++)
		pthread_join(jobs[k].tid, NULL);
	lookup_s = (t1 - t0) / 1e9;
	scan_s = (bk_now_ns() - t1) / 1e9;
	for (k = 0; k < started && !ret; k++) {
		if (jobs[k].ret) {
			ret = jobs[k].ret;
			bk_worker_bad_reason(t, &jobs[k].w, err, sizeof(err));
			fprintf(stderr, "loader: %s: thread %u: a lookup or scan failed: %s\n", name, k,
				err);
		}
	}
	if (!ret && stop)
		ret = -EINTR;
	if (!ret) {
		/* every answer: the lookups as the sorted array says, the scans too */
		if (o->verify)
			rep->mismatches += check_lookups(ks, q, res, n);
		for (i = 0; i < nscans; i++) {
			size_t first = bk_keyset_lower_bound(ks, from[i]);
			size_t want = ks->nr - first < o->scan_len ? ks->nr - first : o->scan_len;

			if (!o->verify)
				continue;
			rep->mismatches += sgot[i] != want;
			for (j = 0; j < sgot[i] && j < want; j++)
				rep->mismatches += memcmp(sres[i * o->scan_len + j].key,
							  &ks->keys[first + j].k,
							  sizeof(struct bkey)) != 0;
		}
	}
	/* every pass of a thread's share did the same work */
	for (k = 0; k < started && !ret; k++) {
		looked_up += jobs[k].nq * jobs[k].lookup_passes;
		for (i = 0; i < jobs[k].nscans; i++)
			scanned += jobs[k].scan_got[i] * jobs[k].scan_passes;
	}
	*lookups_per_s = lookup_s > 0 ? looked_up / lookup_s : 0;
	*scan_keys_per_s = scan_s > 0 ? scanned / scan_s : 0;
out:
	free(jobs);
	free(res);
	free(sres);
	free(sgot);
	return ret;
}

#define MT_ROUNDS	5	/* one thread and N threads in turns: medians */

/*
 * --threads: the lookups and scans from one thread and from N in turns,
 * MT_ROUNDS rounds (the order swapped each round, so that neither always
 * follows the other); the medians of each throughput and of the rounds'
 * ratios go into @rep.
 */
static int run_threads(const char *name, const struct bk_keyset *ks, struct bk_tree_rt *t,
		       const struct run_opts *o, const struct bpos *q, const struct bpos *from,
		       struct tree_report *rep)
{
	double lk[2][MT_ROUNDS], sc[2][MT_ROUNDS], lk_x[MT_ROUNDS], sc_x[MT_ROUNDS];
	unsigned r, k;
	int ret = 0;

	for (r = 0; r < MT_ROUNDS && !ret; r++) {
		for (k = 0; k < 2 && !ret; k++) {
			unsigned w = (r & 1) ? 1 - k : k;

			ret = run_concurrent(name, ks, t, o, w ? o->threads : 1, q, o->lookups,
					     from, o->scans, rep, &lk[w][r], &sc[w][r]);
		}
		lk_x[r] = lk[0][r] > 0 ? lk[1][r] / lk[0][r] : 0;
		sc_x[r] = sc[0][r] > 0 ? sc[1][r] / sc[0][r] : 0;
	}
	if (ret)
		return ret;
	for (k = 0; k < 2; k++) {
		rep->mt_lookups_per_s[k] = bk_median(lk[k], MT_ROUNDS);
		rep->mt_scan_keys_per_s[k] = bk_median(sc[k], MT_ROUNDS);
	}
	rep->mt_lookup_x = bk_median(lk_x, MT_ROUNDS);
	rep->mt_scan_x = bk_median(sc_x, MT_ROUNDS);
	return 0;
}

struct named_keyset {
	const char		*name;
	const struct bk_keyset	*ks;
};

/*
 * The three btrees built, loaded into one node cache (as bcachefs keeps
 * every btree's nodes in one cache, so shapes are shared across trees),
 * then each looked up and scanned; everything but the cache's figures
 * released after.
 */
/* The node cache's figures, over the whole run. */
struct cache_figures {
	uint32_t	shapes, programs;
	long long	kernel_bytes;
	const char	*mem_method;
	const char	*loops;		/* the programs' shapes, as the probe chose */
	const char	*loops_tag;	/* the same, short (bk_node_cache_loops_tag()) */
};

static int run_trees(const struct named_keyset *trees, const struct run_opts *o,
		     struct tree_report *rep, struct cache_figures *cf)
{
	struct bk_btree_opts bo = { .node_size = o->node_size };
	struct bk_btree bt[3] = {};
	struct bk_tree_rt t[3] = {};
	struct bk_node_cache nc;
	uint32_t slots = 0;
	char err[300];
	unsigned i, built = 0, loaded = 0;
	int ret = 0;

	for (i = 0; i < 3; i++) {
		memset(&rep[i], 0, sizeof(rep[i]));
		rep[i].name = trees[i].name;
		rep[i].keys = trees[i].ks->nr;
		ret = bk_btree_build(&bt[i], trees[i].ks, &bo, err, sizeof(err));
		if (ret) {
			fprintf(stderr, "loader: %s: cannot build the btree: %s\n", trees[i].name, err);
			goto out;
		}
		built++;
		slots += bt[i].nr_nodes;
	}
	ret = bk_node_cache_open_runs(&nc, o->node_size, slots, o->threads);
	if (ret) {
		fprintf(stderr, "loader: cannot make the node cache: %s\n",
			ret == -EOPNOTSUPP ? BK_NODE_CACHE_NO_SHAPE : strerror(-ret));
		goto out;
	}
	/* once, before the program loads are measured: what was closed
	 * before has been freed (the trees stay loaded until the end) */
	bk_kernel_mem_settle(&nc.mem_method);
	for (i = 0; i < 3 && !stop; i++, loaded++) {
		ret = bk_tree_load(&t[i], &bt[i], &nc, stderr);
		if (ret) {
			fprintf(stderr, "loader: %s: cannot load the btree into BPF: %s\n",
				trees[i].name, strerror(-ret));
			goto out_cache;
		}
		load_report(&t[i], &rep[i]);
	}
	for (i = 0; i < 3 && !stop && !ret; i++)
		ret = run_tree(trees[i].name, trees[i].ks, &t[i], o, &rep[i]);
	if (!ret && stop)
		ret = -EINTR;
out_cache:
	while (loaded--) {
		int err = bk_tree_unload(&t[loaded]);

		if (err && !ret) {
			fprintf(stderr, "loader: releasing %s's programs: %s\n", trees[loaded].name,
				strerror(-err));
			ret = err;
		}
	}
	/* the figures the report needs, then the maps and programs go */
	*cf = (struct cache_figures){ .shapes = nc.cache.nr, .programs = nc.programs_loaded,
				      .kernel_bytes = nc.prog_kernel_bytes,
				      .mem_method = nc.mem_method,
				      .loops = bk_node_cache_shapes(&nc),
				      .loops_tag = bk_node_cache_loops_tag(&nc) };
	bk_node_cache_close(&nc);
out:
	while (built--)
		bk_btree_free(&bt[built]);
	return ret;
}

/* The whole run: medians over the trees of what loading them cost. */
struct run_totals {
	uint32_t	nodes;
	size_t		mismatches;
	double		prep_p50, cached_node_ns;
};

static void run_totals(const struct tree_report *r, unsigned n, struct run_totals *tot)
{
	double prep[3], node[3];
	unsigned i, np = 0;

	memset(tot, 0, sizeof(*tot));
	for (i = 0; i < n; i++) {
		tot->nodes += r[i].nodes;
		tot->mismatches += r[i].mismatches;
		if (r[i].programs)	/* a tree whose shapes were all cached prepared none */
			prep[np++] = r[i].prep_p50;
		node[i] = r[i].cached_node_ns;
	}
	if (np)
		tot->prep_p50 = bk_median(prep, np);
	if (n)
		tot->cached_node_ns = bk_median(node, n);
}

static void print_report(const struct tree_report *r, unsigned n, const struct run_opts *o,
			 const struct cache_figures *cf, double total_s)
{
	struct run_totals tot;
	size_t bad = 0;
	unsigned i;

	printf("bkey-bpf: %zu keys in 3 btrees (seed %#llx), %u-byte nodes; every lookup "
	       "and scanned key %s\n\n", r[0].keys + r[1].keys + r[2].keys,
	       (unsigned long long)o->seed, o->node_size,
	       o->verify ? "checked against a sorted array" : "unchecked (--no-verify)");
	printf("%-8s %8s %6s %6s %5s %6s %6s %8s %9s %8s %8s %8s\n", "btree", "keys", "nodes",
	       "depth", "fmts", "shapes", "progs", "unpacked", "xlated", "JIT B", "prep p50",
	       "prep p99");
	for (i = 0; i < n; i++)
		printf("%-8s %8zu %6u %6u %5u %6u %6u %8zu %9lu %8lu %7.0fus %7.0fus\n", r[i].name,
		       r[i].keys, r[i].nodes, r[i].depth, r[i].formats, r[i].shapes, r[i].programs,
		       r[i].unpacked, r[i].xlated, r[i].jited, r[i].prep_p50, r[i].prep_p99);
	printf("\n%-8s %9s %12s %12s %8s %6s %12s | %12s %12s   %s\n", "btree", "lookups",
	       "lookups/s", "kernel ns/lk", "C ns/lk", "bpf/C", "scan keys/s", "ref lookup/s",
	       "ref scan k/s", "mismatches");
	for (i = 0; i < n; i++) {
		printf("%-8s %9zu %12.0f %12.0f %8.0f %6.2f %12.0f | %12.0f %12.0f   %zu\n", r[i].name,
		       r[i].lookups, r[i].lookups / r[i].lookup_s, r[i].kernel_ns_per_lookup,
		       r[i].c_ns_per_lookup, r[i].c_ns_per_lookup > 0 ?
		       r[i].kernel_ns_per_lookup / r[i].c_ns_per_lookup : 0,
		       r[i].scanned / r[i].scan_s, r[i].lookups / r[i].ref_lookup_s,
		       r[i].scanned / r[i].ref_scan_s, r[i].mismatches);
		bad += r[i].mismatches;
	}
	printf("\nlookups: one root-to-leaf walk per lookup inside the kernel (lossy search key\n"
	       "and packed comparison per node, tail calls between shapes), %u lookups per\n"
	       "batch in one test run; lookups/s counts the whole call, kernel ns/lk only the\n"
	       "program runs. C ns/lk: each batch again in C right after, over the same packed\n"
	       "nodes (bcachefs's algorithm with the model, the leaf key unpacked), each answer\n"
	       "equal to the kernel's.\n"
	       "ref: the same answers from a sorted array in userspace (no unpacking).\n"
	       "fmts: distinct node formats; shapes: distinct key_u64s and widths, each with\n"
	       "one lookup and one scan program that every node of the shape shares.\n"
	       "prep: generating, verifying and JIT-compiling a shape's two programs.\n"
	       "mismatches: %zu. Total %.1f s.\n", BK_BATCH, bad, total_s);
	if (o->threads > 1) {
		printf("\n%-8s %8s %12s %8s %12s %8s\n", "btree", "threads", "lookups/s", "x 1 thr",
		       "scan keys/s", "x 1 thr");
		for (i = 0; i < n; i++)
			printf("%-8s %8u %12.0f %8.2f %12.0f %8.2f\n", r[i].name, o->threads,
			       r[i].mt_lookups_per_s[1], r[i].mt_lookup_x,
			       r[i].mt_scan_keys_per_s[1], r[i].mt_scan_x);
		printf("\nthreads: the same lookups and scans again, from %u threads at once on the\n"
		       "same trees and programs, each thread on its own run slot of the maps (its\n"
		       "runs' context names it); x 1 thr: throughput over the same code's from one\n"
		       "thread, the two in turns for %u rounds (medians; x 1 thr the median of the\n"
		       "rounds' ratios), each thread's share repeated for %.0f ms a phase, answers\n"
		       "into buffers written beforehand and checked after the threads end; every\n"
		       "answer checked (counted in mismatches).\n",
		       o->threads, MT_ROUNDS, MT_PHASE_NS / 1e6);
	}
	run_totals(r, n, &tot);
	printf("\nprograms: %u for %u nodes (%u shapes), %.1f KiB of kernel memory, %.0f B per "
	       "node\n(%s, grown over the program loads); a node whose shape is cached loads "
	       "in %.1f us (p50),\na new shape's two programs in %.0f us.\n", cf->programs,
	       tot.nodes, cf->shapes, cf->kernel_bytes / 1024.0,
	       tot.nodes ? (double)cf->kernel_bytes / tot.nodes : 0,
	       cf->mem_method ? cf->mem_method : "?", tot.cached_node_ns / 1e3, tot.prep_p50);
	printf("loops: %s.\n", cf->loops ? cf->loops : "?");
}

static void json_report(const struct tree_report *r, unsigned n, const struct run_opts *o,
			const struct cache_figures *cf)
{
	struct run_totals tot;
	unsigned i;
	size_t bad = 0;

	run_totals(r, n, &tot);
	printf("{\"seed\":%llu,\"node_size\":%u,\"verified\":%s,\"threads\":%u,"
	       "\"loops\":\"%s\",\"nodes\":%u,\"shapes\":%u,"
	       "\"programs\":%u,\"program_kernel_bytes\":%lld,\"program_kernel_bytes_per_node\":%.1f,"
	       "\"memory_counter\":\"%s\",\"cached_node_load_ns_p50\":%.0f,\"new_shape_prepare_us_p50\":%.1f,"
	       "\"btrees\":[", (unsigned long long)o->seed, o->node_size,
	       o->verify ? "true" : "false", o->threads,
	       cf->loops_tag ? cf->loops_tag : "?", tot.nodes, cf->shapes, cf->programs,
	       cf->kernel_bytes, tot.nodes ? (double)cf->kernel_bytes / tot.nodes : 0,
	       cf->mem_method ? cf->mem_method : "?", tot.cached_node_ns, tot.prep_p50);
	for (i = 0; i < n; i++) {
		printf("%s{\"name\":\"%s\",\"keys\":%zu,\"nodes\":%u,\"leaves\":%u,\"depth\":%u,"
		       "\"formats\":%u,\"shapes\":%u,\"programs\":%u,\"program_kernel_bytes\":%lld,"
		       "\"keys_unpacked\":%zu,\"xlated_insns\":%lu,"
		       "\"jited_bytes\":%lu,\"prepare_us_p50\":%.1f,\"prepare_us_p99\":%.1f,"
		       "\"lookups\":%zu,\"lookups_per_s\":%.0f,\"kernel_ns_per_lookup\":%.1f,"
		       "\"c_ns_per_lookup\":%.1f,"
		       "\"runs\":%lu,\"scan_keys\":%zu,\"scan_keys_per_s\":%.0f,"
		       "\"ref_lookups_per_s\":%.0f,\"ref_scan_keys_per_s\":%.0f,",
		       i ? "," : "", r[i].name, r[i].keys, r[i].nodes, r[i].leaves, r[i].depth,
		       r[i].formats, r[i].shapes, r[i].programs, r[i].prog_kernel_bytes, r[i].unpacked,
		       r[i].xlated, r[i].jited,
		       r[i].prep_p50, r[i].prep_p99, r[i].lookups, r[i].lookups / r[i].lookup_s,
		       r[i].kernel_ns_per_lookup, r[i].c_ns_per_lookup, r[i].runs, r[i].scanned, r[i].scanned / r[i].scan_s,
		       r[i].lookups / r[i].ref_lookup_s, r[i].scanned / r[i].ref_scan_s);
		if (o->threads > 1)
			printf("\"threaded_lookups_per_s\":%.0f,\"threaded_scan_keys_per_s\":%.0f,"
			       "\"one_thread_lookups_per_s\":%.0f,\"one_thread_scan_keys_per_s\":%.0f,"
			       "\"threads_lookups_x\":%.2f,\"threads_scan_keys_x\":%.2f,",
			       r[i].mt_lookups_per_s[1], r[i].mt_scan_keys_per_s[1],
			       r[i].mt_lookups_per_s[0], r[i].mt_scan_keys_per_s[0],
			       r[i].mt_lookup_x, r[i].mt_scan_x);
		printf("\"mismatches\":%zu}", r[i].mismatches);
		bad += r[i].mismatches;
	}
	printf("],\"mismatches\":%zu}\n", bad);
}

void run_usage(FILE *out, const char *prog)
{
	fprintf(out,
"Usage: %s [run] [--keys N] [--node-size B] [--lookups N] [--scans N]\n"
"          [--scan-len N] [--seed S] [--threads N] [--no-verify] [--pin DIR] [-j]\n"
"\n"
"The main job. Builds a filesystem-like key set (inodes; extents across many\n"
"inodes with realistic sizes; dirents with 64-bit hashes), bulk-loads each of\n"
"its three btrees with per-node formats, loads them into BPF maps with one\n"
"program pair per node shape, runs lookups (one root-to-leaf walk per lookup\n"
"in the kernel) and scans through prog runs, checks every answer against a\n"
"sorted array, and reports. Needs CAP_BPF and CAP_PERFMON.\n"
"\n"
"  --keys N        keys in all (default 1000000)\n"
"  --node-size B   bytes of keys per node (default 65536)\n"
"  --lookups N     lookups per btree (default 200000)\n"
"  --scans N       scans per btree (default 200), --scan-len keys each (1000)\n"
"  --seed S        the key set's seed (default 0x5eedb7ee)\n"
"  --threads N     then the same lookups and scans again from N threads at once\n"
"                  (default 1: not again), each on its own run slot of the maps\n"
"                  and sharing the programs, in turns with one thread (5 rounds\n"
"                  of 200 ms phases); every answer checked, throughput reported\n"
"                  beside one thread's (1..64)\n"
"  --no-verify     skip the checks against the sorted arrays\n"
"  --pin DIR       pin each btree under DIR/<name> (on bpffs) as 'lookup --pin'\n"
"                  does: 'lookup --pinned DIR/inodes' queries it and bpftool\n"
"                  shows and dumps it after exit; without it everything is\n"
"                  released at exit and on Ctrl-C\n"
"  -j, --json      print the report as JSON\n"
"\n"
"Exit status: 0 if every answer matched; 1 otherwise or on failure.\n", prog);
}

int run_main(int argc, char **argv, const char *prog)
{
	static const struct option opts[] = {
		{ "keys", required_argument, NULL, 'k' },
		{ "node-size", required_argument, NULL, 'n' },
		{ "lookups", required_argument, NULL, 'l' },
		{ "scans", required_argument, NULL, 's' },
		{ "scan-len", required_argument, NULL, 'L' },
		{ "seed", required_argument, NULL, 'S' },
		{ "no-verify", no_argument, NULL, 'V' },
		{ "pin", required_argument, NULL, 'p' },
		{ "threads", required_argument, NULL, 't' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	struct run_opts o = {
		.keys = 1000000, .node_size = 65536, .lookups = 200000, .scans = 200,
		.scan_len = 1000, .seed = 0x5eedb7ee, .verify = true, .threads = 1,
	};
	struct tree_report rep[3];
	struct cache_figures cf = {};
	struct bk_workload w;
	struct progress pg;
	double t0 = bk_now_ns();
	char why[160], *end;
	unsigned i, n = 0;
	size_t bad = 0;
	int opt, ret;

	while ((opt = getopt_long(argc, argv, "k:n:l:s:L:S:Vp:t:jh", opts, NULL)) != -1) {
		unsigned long long v = 0;
		const char *numeric = "knlsLSt";

		if (optarg && strchr(numeric, opt)) {
			errno = 0;
			v = strtoull(optarg, &end, 0);
			if (errno || *end || !*optarg) {
				const struct option *op = opts;

				while (op->val != opt)
					op++;
				fprintf(stderr, "%s: --%s: \"%s\" is not a number\n", prog, op->name,
					optarg);
				return 2;
			}
		}
		switch (opt) {
		case 'k': o.keys = v; break;
		case 'n': o.node_size = v; break;
		case 'l': o.lookups = v; break;
		case 's': o.scans = v; break;
		case 'L': o.scan_len = v; break;
		case 'S': o.seed = v; break;
		case 'V': o.verify = false; break;
		case 'p': o.pin = optarg; break;
		case 't': o.threads = v > MAX_THREADS ? MAX_THREADS + 1 : (unsigned)v; break;
		case 'j': o.json = true; break;
		case 'h': run_usage(stdout, prog); return 0;
		default: run_usage(stderr, prog); return 2;
		}
	}
	if (!o.threads || o.threads > MAX_THREADS) {
		fprintf(stderr, "%s: --threads must be in 1..%u\n", prog, MAX_THREADS);
		return 2;
	}
	if (o.keys < 100 || o.keys > 50000000 || o.node_size < BK_NODE_SIZE_MIN ||
	    o.node_size > BK_NODE_SIZE_MAX || o.node_size % 8 || !o.scan_len ||
	    o.scan_len > 1000000) {
		fprintf(stderr, "%s: --keys must be in 100..50000000, --node-size a multiple of 8 "
			"in %u..%u, --scan-len in 1..1000000\n", prog, BK_NODE_SIZE_MIN,
			BK_NODE_SIZE_MAX);
		return 2;
	}
	if (o.pin) {
		struct statfs sf;

		if (statfs(o.pin, &sf) || sf.f_type != BPF_FS_MAGIC) {
			fprintf(stderr, "%s: --pin: %s is not a directory on bpffs "
				"(mount -t bpf bpf /sys/fs/bpf)\n", prog, o.pin);
			return 2;
		}
	}
	if (!bk_caps_ok(why, sizeof(why))) {
		fprintf(stderr, "%s: %s\n", prog, why);
		return 1;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	progress_start(&pg, "building the key set");
	ret = bk_workload_build(&w, o.keys, o.seed);
	progress_end(&pg);
	if (ret) {
		fprintf(stderr, "%s: cannot build the key set: %s\n", prog, strerror(-ret));
		return 1;
	}
	{
		const struct named_keyset trees[] = {
			{ "inodes", &w.inodes }, { "extents", &w.extents }, { "dirents", &w.dirents },
		};

		ret = run_trees(trees, &o, rep, &cf);
		n = ret ? 0 : 3;
	}
	bk_workload_free(&w);
	if (stop) {
		fprintf(stderr, "%s: interrupted; everything%s released\n", prog,
			o.pin ? " not pinned was" : " was");
		return 130;
	}
	if (ret)
		return 1;
	if (o.json)
		json_report(rep, n, &o, &cf);
	else
		print_report(rep, n, &o, &cf, (bk_now_ns() - t0) / 1e9);
	for (i = 0; i < n; i++)
		bad += rep[i].mismatches;
	return bad ? 1 : 0;
}
