/* SPDX-License-Identifier: GPL-2.0 */
/* Small helpers shared by the loader, the benchmark and the tests. */
#ifndef USER_UTIL_H
#define USER_UTIL_H

#include <stdint.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

static inline double bk_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static inline int bk_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Sorts @v and returns its median. */
static inline double bk_median(double *v, unsigned n)
{
	qsort(v, n, sizeof(*v), bk_cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* xorshift64*: small, deterministic for a given seed. */
static inline uint64_t bk_rnd(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1DULL;
}

/*
 * A btree with thousands of formats keeps thousands of program fds: raise
 * the soft limit to the hard one (and the hard one too where permitted).
 */
static inline void bk_raise_nofile(void)
{
	struct rlimit r;

	if (getrlimit(RLIMIT_NOFILE, &r))
		return;
	r.rlim_cur = r.rlim_max;
	setrlimit(RLIMIT_NOFILE, &r);
	r.rlim_cur = r.rlim_max = 1 << 20;
	setrlimit(RLIMIT_NOFILE, &r);	/* root may go further */
}

#endif
