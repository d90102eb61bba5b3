// SPDX-License-Identifier: GPL-2.0
/*
 * The test runner.  Usage: test_progs [-t FILTER[,FILTER...]] [-v] [-l]
 * A filter matches "test" or "test/subtest" by substring.
 */
#include <ctype.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <unistd.h>

#include "test_progs.h"
#include "util.h"

int env_verbose;
const char *env_shared_dir = "../shared";

static struct test_def *tests_head, **tests_tail = &tests_head;
static const char *filters[32];
static int nr_filters;

static const char *cur_test;
static char cur_sub[128];
static bool in_subtest, sub_failed, sub_skipped, test_failed, test_skipped;
static bool test_had_subtests, outer_failed;
static int subs_run, subs_skipped;
static int nr_passed, nr_failed, nr_skipped;

struct named_count {
	char		name[64];
	long long	n;
};
static struct named_count counts[64];
static int nr_counts;

void test_register(struct test_def *t)
{
	*tests_tail = t;
	tests_tail = &t->next;
}

static bool filter_match(const char *name)
{
	int i;

	if (!nr_filters)
		return true;
	for (i = 0; i < nr_filters; i++)
		if (strstr(name, filters[i]))
			return true;
	return false;
}

static void end_subtest(void)
{
	if (!in_subtest)
		return;
	if (sub_failed) {
		nr_failed++;
		printf("#%s/%s:FAIL\n", cur_test, cur_sub);
	} else if (sub_skipped) {
		nr_skipped++;
		subs_skipped++;
		printf("#%s/%s:SKIP\n", cur_test, cur_sub);
	} else {
		nr_passed++;
		if (env_verbose)
			printf("#%s/%s:OK\n", cur_test, cur_sub);
	}
	in_subtest = false;
}

bool test__start_subtest(const char *name)
{
	char full[256];

	end_subtest();
	test_had_subtests = true;
	snprintf(full, sizeof(full), "%s/%s", cur_test, name);
	/* a filter naming the test alone selects all of its subtests */
	if (nr_filters && !filter_match(full) && !filter_match(cur_test))
		return false;
	snprintf(cur_sub, sizeof(cur_sub), "%s", name);
	in_subtest = true;
	subs_run++;
	sub_failed = sub_skipped = false;
	return true;
}

void test__skip(const char *fmt, ...)
{
	va_list ap;

	printf("#%s%s%s: SKIP: ", cur_test, in_subtest ? "/" : "",
	       in_subtest ? cur_sub : "");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	if (in_subtest)
		sub_skipped = true;
	else
		test_skipped = true;
}

void test__fail(void)
{
	if (in_subtest)
		sub_failed = true;
	else
		outer_failed = true;
	test_failed = true;
}

void test__count(const char *name, long long n)
{
	int i;

	for (i = 0; i < nr_counts; i++)
		if (!strcmp(counts[i].name, name)) {
			counts[i].n += n;
			return;
		}
	if (nr_counts < (int)(sizeof(counts) / sizeof(counts[0]))) {
		snprintf(counts[nr_counts].name, sizeof(counts[0].name), "%s", name);
		counts[nr_counts++].n = n;
	}
}

void test__memdiff(const char *file, int line, const char *name,
		   const void *a, const void *b, size_t len)
{
	const uint8_t *x = a, *y = b;
	size_t i;

	test__fail();
	fprintf(stderr, "%s:%d: FAIL %s: bytes differ\n  actual:   ", file, line, name);
	for (i = 0; i < len; i++)
		fprintf(stderr, "%02x", x[i]);
	fprintf(stderr, "\n  expected: ");
	for (i = 0; i < len; i++)
		fprintf(stderr, "%02x", y[i]);
	fprintf(stderr, "\n");
}

size_t test_hex(const char *hex, void *out, size_t cap)
{
	uint8_t *o = out;
	size_t n = 0;

	while (*hex && n < cap) {
		unsigned v;

		if (!isxdigit((unsigned char)hex[0])) {
			hex++;
			continue;
		}
		if (sscanf(hex, "%2x", &v) != 1)
			break;
		o[n++] = v;
		hex += 2;
	}
	return n;
}

static void run_test(struct test_def *t)
{
	cur_test = t->name;
	test_failed = test_skipped = test_had_subtests = outer_failed = false;
	subs_run = subs_skipped = 0;
	t->fn();
	end_subtest();
	if (test_had_subtests) {
		/* counted per subtest; a failure outside subtests counts too */
		if (outer_failed)
			nr_failed++;
		printf("#%s:%s\n", t->name, test_failed ? "FAIL" :
		       subs_run && subs_run == subs_skipped ? "SKIP" : "OK");
		return;
	}
	if (test_failed) {
		nr_failed++;
		printf("#%s:FAIL\n", t->name);
	} else if (test_skipped) {
		nr_skipped++;
		printf("#%s:SKIP\n", t->name);
	} else {
		nr_passed++;
		printf("#%s:OK\n", t->name);
	}
}

int main(int argc, char **argv)
{
	struct test_def *t;
	bool list = false;
	int opt, i;
	char *env;

	setvbuf(stdout, NULL, _IOLBF, 0);
	bk_raise_nofile();
	env = getenv("BKEY_SHARED");
	if (env && *env)
		env_shared_dir = env;
	while ((opt = getopt(argc, argv, "t:vlh")) != -1) {
		switch (opt) {
		case 't': {
			char *s = strdup(optarg), *tok;

			for (tok = strtok(s, ","); tok && nr_filters < 32; tok = strtok(NULL, ","))
				filters[nr_filters++] = tok;
			break;
		}
		case 'v':
			env_verbose = 1;
			break;
		case 'l':
			list = true;
			break;
		default:
			fprintf(stderr, "usage: %s [-t FILTER[,FILTER]] [-v] [-l]\n"
				"  -t  run tests whose name or test/subtest contains FILTER\n"
				"  -v  print every passing subtest\n"
				"  -l  list tests\n"
				"  BKEY_SHARED=DIR  where ../shared lives (default ../shared)\n",
				argv[0]);
			return opt == 'h' ? 0 : 2;
		}
	}

	for (t = tests_head; t; t = t->next) {
		if (list) {
			printf("%s\n", t->name);
			continue;
		}
		if (nr_filters) {
			bool any = filter_match(t->name);

			/* "test/sub" filters select the test too */
			for (i = 0; !any && i < nr_filters; i++)
				if (!strncmp(filters[i], t->name, strlen(t->name)) &&
				    filters[i][strlen(t->name)] == '/')
					any = true;
			if (!any)
				continue;
		}
		run_test(t);
	}
	if (list)
		return 0;
	for (i = 0; i < nr_counts; i++)
		printf("%s: %lld\n", counts[i].name, counts[i].n);
	printf("%d passed, %d failed, %d skipped\n", nr_passed, nr_failed, nr_skipped);
	return nr_failed ? 1 : 0;
}
