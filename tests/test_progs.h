/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A small test runner in the style of tools/testing/selftests/bpf's
 * test_progs: tests register with DEFINE_TEST(), may open subtests, and
 * use ASSERT_*() macros that print actual vs expected and return bool.
 * The run ends with "N passed, N failed, N skipped" (counted per test or
 * subtest).
 */
#ifndef TESTS_TEST_PROGS_H
#define TESTS_TEST_PROGS_H

#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

struct test_def {
	const char	*name;
	void		(*fn)(void);
	struct test_def	*next;
};

void test_register(struct test_def *t);

#define DEFINE_TEST(tname)						\
	static void test_##tname(void);					\
	static struct test_def __test_def_##tname = {			\
		.name = #tname, .fn = test_##tname,			\
	};								\
	__attribute__((constructor)) static void __test_reg_##tname(void) \
	{ test_register(&__test_def_##tname); }				\
	static void test_##tname(void)

/* Runner state visible to tests. */
extern int env_verbose;
extern const char *env_shared_dir;	/* ../shared or $BKEY_SHARED */

/* Starts a subtest; returns false if filtered out. */
bool test__start_subtest(const char *name);
/* Marks the current (sub)test skipped, with a reason printed once. */
void test__skip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Records one failed assertion (the macros call it). */
void test__fail(void);
/* Records a named count printed in the summary ("verifier accepted: N"). */
void test__count(const char *name, long long n);

#define _CHECK(cond, tag, fmt, ...) ({					\
	bool ___ok = !!(cond);						\
	if (!___ok) {							\
		test__fail();						\
		fprintf(stderr, "%s:%d: FAIL %s: " fmt "\n",		\
			__FILE__, __LINE__, tag, ##__VA_ARGS__);	\
	}								\
	___ok;								\
})

#define ASSERT_TRUE(a, name) _CHECK((a), (name), "unexpected false")
#define ASSERT_FALSE(a, name) _CHECK(!(a), (name), "unexpected true")
#define ASSERT_OK(res, name) ({ long long ___r = (res);			\
	_CHECK(___r == 0, (name), "unexpected error: %lld", ___r); })
#define ASSERT_ERR(res, name) ({ long long ___r = (res);		\
	_CHECK(___r < 0, (name), "unexpected success: %lld", ___r); })
#define ASSERT_EQ(a, b, name) ({ unsigned long long ___a = (a), ___b = (b); \
	_CHECK(___a == ___b, (name), "actual %llu (0x%llx) != expected %llu (0x%llx)", \
	       ___a, ___a, ___b, ___b); })
#define ASSERT_NEQ(a, b, name) ({ unsigned long long ___a = (a), ___b = (b); \
	_CHECK(___a != ___b, (name), "actual %llu == unexpected %llu", ___a, ___b); })
#define ASSERT_GT(a, b, name) ({ long long ___a = (a), ___b = (b);	\
	_CHECK(___a > ___b, (name), "actual %lld <= expected %lld", ___a, ___b); })
#define ASSERT_GE(a, b, name) ({ long long ___a = (a), ___b = (b);	\
	_CHECK(___a >= ___b, (name), "actual %lld < expected %lld", ___a, ___b); })
#define ASSERT_LT(a, b, name) ({ long long ___a = (a), ___b = (b);	\
	_CHECK(___a < ___b, (name), "actual %lld >= expected %lld", ___a, ___b); })
#define ASSERT_LE(a, b, name) ({ long long ___a = (a), ___b = (b);	\
	_CHECK(___a <= ___b, (name), "actual %lld > expected %lld", ___a, ___b); })
#define ASSERT_STREQ(a, b, name) ({ const char *___a = (a), *___b = (b); \
	_CHECK(!strcmp(___a, ___b), (name), "actual \"%s\" != expected \"%s\"", \
	       ___a, ___b); })
#define ASSERT_HAS_SUBSTR(str, sub, name) ({ const char *___s = (str), *___t = (sub); \
	_CHECK(___s && strstr(___s, ___t), (name), "\"%s\" not found in \"%s\"", \
	       ___t, ___s ? ___s : "(null)"); })
/* Compares byte buffers; prints both as hex on mismatch. */
#define ASSERT_MEMEQ(a, b, len, name) ({					\
	bool ___ok = !memcmp((a), (b), (len));				\
	if (!___ok)							\
		test__memdiff(__FILE__, __LINE__, (name), (a), (b), (len)); \
	___ok; })

void test__memdiff(const char *file, int line, const char *name,
		   const void *a, const void *b, size_t len);

/* Hex helpers for tests: "0a 0b" or "0a0b" (spaces ignored). */
size_t test_hex(const char *hex, void *out, size_t cap);

#endif /* TESTS_TEST_PROGS_H */
