// SPDX-License-Identifier: GPL-2.0
/*
 * Failing calls: a small main job of the loader runs once for every bpf()
 * system call, every mmap() and every allocation it makes, with that one
 * call failing (tests/fault/faultinj.c, LD_PRELOADed).  Each run must end
 * with exit status 1 and one line on stderr that says why, and hold no
 * BPF program, map or BTF object at exit (the shim counts this process's
 * fds and mappings, and exits 99 on a leak).  The one exception: a bpf()
 * that is libbpf's own feature probe (a program not of ours), whose
 * failure libbpf takes as "not supported" and the run goes on; then it
 * must succeed (every answer is checked) and leak nothing.
 */
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_progs.h"
#include "kenv.h"
#include "util.h"

/* the job: a small main job (three btrees, lookups and scans, every answer checked) */
#define JOB_ARGS	"--keys", "300", "--lookups", "20", "--scans", "2"
/* the job Ctrl-C stops: long enough to stop it in every phase, two threads */
#define CTRL_C_ARGS	"--keys", "20000", "--lookups", "5000", "--scans", "50", "--threads", "2"

struct fault_run {
	int		status;		/* exit status, -1 if it did not exit */
	unsigned long	bpf, mmap, alloc, hit;
	char		failed[80];	/* the call that failed */
	bool		leaked;
	bool		signalled;	/* killed by a signal (no report then) */
	char		err[4096];	/* its stderr */
	unsigned	err_lines;
};

static const char *env_or(const char *name, const char *def)
{
	const char *v = getenv(name);

	return v && *v ? v : def;
}

/* the dynamically linked loader (LD_PRELOAD), and the shim */
#define FAULT_LOADER	env_or("BKEY_FAULT_LOADER", "./loader")
#define FAULT_SHIM	env_or("BKEY_FAULTINJ", ".output/faultinj.so")

static char *slurp_file(const char *path, size_t max)
{
	char *buf = calloc(1, max + 1);
	int fd = open(path, O_RDONLY);
	ssize_t n = fd >= 0 ? read(fd, buf, max) : -1;

	if (fd >= 0)
		close(fd);
	if (n < 0 && buf)
		buf[0] = 0;
	return buf;
}

/*
 * Runs the job (@long_job: the one Ctrl-C stops) with @fault ("bpf:N",
 * ... or NULL), and SIGINT after @sigint_us if >= 0: its status, stderr,
 * report.  *@ran_us: how long.
 */
static bool run_job_sig(const char *fault, const char *dir, bool long_job, long sigint_us,
			struct fault_run *r, double *ran_us)
{
	double t0 = bk_now_ns();
	char report[300], errpath[300], shim[PATH_MAX], *rep, *s;
	pid_t pid;
	int st;

	memset(r, 0, sizeof(*r));
	snprintf(report, sizeof(report), "%s/report", dir);
	snprintf(errpath, sizeof(errpath), "%s/stderr", dir);
	unlink(report);
	if (!realpath(FAULT_SHIM, shim))
		return false;
	pid = fork();
	if (pid < 0)
		return false;
	if (!pid) {
		int null = open("/dev/null", O_WRONLY), err = open(errpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);

		dup2(null, 1);
		dup2(err, 2);
		if (fault)
			setenv("BK_FAULT", fault, 1);
		else
			unsetenv("BK_FAULT");
		setenv("BK_FAULT_REPORT", report, 1);
		setenv("LD_PRELOAD", shim, 1);
		if (long_job)
			execl(FAULT_LOADER, "loader", CTRL_C_ARGS, (char *)NULL);
		else
			execl(FAULT_LOADER, "loader", JOB_ARGS, (char *)NULL);
		_exit(127);
	}
	if (sigint_us >= 0) {
		usleep(sigint_us);
		kill(pid, SIGINT);
	}
	if (waitpid(pid, &st, 0) != pid)
		return false;
	if (ran_us)
		*ran_us = (bk_now_ns() - t0) / 1e3;
	r->signalled = WIFSIGNALED(st);
	r->status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
	s = slurp_file(errpath, sizeof(r->err) - 1);
	if (s) {
		snprintf(r->err, sizeof(r->err), "%s", s);
		free(s);
	}
	for (s = r->err; *s; s++)
		r->err_lines += *s == '\n';
	rep = slurp_file(report, 4096);
	if (!rep || sscanf(rep, "bpf %lu mmap %lu alloc %lu hit %lu", &r->bpf, &r->mmap, &r->alloc,
			   &r->hit) != 4) {
		free(rep);
		return false;
	}
	s = strstr(rep, "failed: ");
	if (s)
		snprintf(r->failed, sizeof(r->failed), "%.*s", (int)strcspn(s + 8, "\n"), s + 8);
	r->leaked = strstr(rep, "leaked:") != NULL;
	free(rep);
	return true;
}

static bool run_job(const char *fault, const char *dir, struct fault_run *r)
{
	return run_job_sig(fault, dir, false, -1, r, NULL);
}

/* The loader and the shim are there, and @dir (a mkdtemp template) is made; else SKIP. */
static bool ready(char *dir)
{
	if (access(FAULT_LOADER, X_OK) || access(FAULT_SHIM, R_OK)) {
		test__skip("%s or %s not built (make, from the repository root)", FAULT_LOADER,
			   FAULT_SHIM);
		return false;
	}
	if (!mkdtemp(dir)) {
		test__skip("no temporary directory");
		return false;
	}
	return true;
}

/* The runs' directory: their report and stderr, then itself. */
static void remove_workdir(const char *dir)
{
	char path[300];

	snprintf(path, sizeof(path), "%s/report", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/stderr", dir);
	unlink(path);
	rmdir(dir);
}

/* libbpf's own probes load programs named otherwise than ours ("bk...", "bs...", "bl...") */
static bool libbpf_probe(const struct fault_run *r)
{
	return !strncmp(r->failed, "PROG_LOAD ", 10) && r->failed[10] != 'b';
}

static void each_failure(const char *kind)
{
	char dir[] = "/tmp/bkey-faults.XXXXXX", fault[64], *nl;
	struct fault_run clean, r;
	unsigned long total, n, failed = 0, absorbed = 0;

	if (!ready(dir))
		return;
	if (!run_job(NULL, dir, &clean)) {
		test__skip("the shim did not run in %s (a static loader? LD_PRELOAD needs a "
			   "dynamically linked one)", FAULT_LOADER);
		goto out;
	}
	if (!ASSERT_EQ(clean.status, 0, "the job without a fault") ||
	    !ASSERT_FALSE(clean.leaked, "the job without a fault leaks nothing"))
		goto out;
	total = !strcmp(kind, "bpf") ? clean.bpf : !strcmp(kind, "mmap") ? clean.mmap : clean.alloc;
	ASSERT_GT(total, 0, "calls to fail");
	for (n = 1; n <= total; n++) {
		snprintf(fault, sizeof(fault), "%s:%lu", kind, n);
		if (!ASSERT_TRUE(run_job(fault, dir, &r), "the job ran and reported"))
			break;
		if (!ASSERT_EQ(r.hit, 1, "the call failed")) {
			fprintf(stderr, "  %s\n", fault);
			break;
		}
		if (!ASSERT_FALSE(r.leaked, "nothing left held at exit"))
			fprintf(stderr, "  %s (%s): a leak\n", fault, r.failed);
		if (r.status == 0 && kind[0] == 'b' && libbpf_probe(&r)) {
			absorbed++;
			continue;
		}
		failed++;
		nl = strchr(r.err, '\n');
		if (!ASSERT_EQ(r.status, 1, "exit status") ||
		    !ASSERT_EQ(r.err_lines, 1, "one line on stderr") ||
		    !ASSERT_TRUE(nl && !strncmp(r.err, "loader", 6), "it says who")) {
			fprintf(stderr, "  %s (%s): exit %d, stderr:\n%.600s\n", fault, r.failed,
				r.status, r.err);
			break;
		}
	}
	printf("  %s: %lu calls failed one at a time: %lu ended in one error line and exit 1, "
	       "%lu were libbpf's own probes (the run went on and passed)\n", kind, total, failed,
	       absorbed);
	test__count("runs with one failing call", n - 1);
out:
	remove_workdir(dir);
}

/*
 * Ctrl-C at 70 random moments of a main job (two threads), spread over
 * its whole length (at least 50 must land while it runs): each run ends
 * "interrupted" with status 130 (or finishes first, 0), and holds no
 * program, map or BTF object at exit.  A signal before the loader's
 * handler is in place kills it, which is fine: it has made nothing yet.
 */
static void ctrl_c(void)
{
	char dir[] = "/tmp/bkey-ctrlc.XXXXXX";
	uint64_t seed = 0x5eedc7c1;
	unsigned long i, interrupted = 0, finished = 0, killed = 0;
	struct fault_run r;
	double full_us;

	if (!ready(dir))
		return;
	/* how long the whole job takes: the moments are spread over it */
	if (!run_job_sig(NULL, dir, true, -1, &r, &full_us)) {
		test__skip("the shim did not run in %s (a static loader?)", FAULT_LOADER);
		goto out;
	}
	if (!ASSERT_EQ(r.status, 0, "the job without Ctrl-C") || !ASSERT_FALSE(r.leaked, "no leak"))
		goto out;
	for (i = 0; i < 70; i++) {
		long at = (long)((double)(rnd_next(&seed) % 1000) / 1000 * full_us);
		bool reported = run_job_sig(NULL, dir, true, at, &r, NULL);

		if (r.signalled) {
			killed++;	/* before the handler: nothing made yet */
			continue;
		}
		if (!ASSERT_TRUE(reported, "it exited and reported") ||
		    !ASSERT_FALSE(r.leaked, "nothing held at exit")) {
			fprintf(stderr, "  Ctrl-C at %ld us: exit %d\n%.600s\n", at, r.status, r.err);
			break;
		}
		if (r.status == 0) {
			finished++;
			continue;
		}
		interrupted++;
		if (!ASSERT_EQ(r.status, 130, "exit status after Ctrl-C") ||
		    !ASSERT_HAS_SUBSTR(r.err, "interrupted; everything was released", "it says so") ||
		    !ASSERT_EQ(r.err_lines, 1, "one line")) {
			fprintf(stderr, "  Ctrl-C at %ld us of %.0f:\n%.600s\n", at, full_us, r.err);
			break;
		}
	}
	printf("  Ctrl-C at %lu moments of a %.0f ms job: %lu interrupted (130), %lu finished "
	       "first, %lu before the handler\n", i, full_us / 1e3, interrupted, finished, killed);
	ASSERT_GE(interrupted, 50, "runs interrupted");
out:
	remove_workdir(dir);
}

DEFINE_TEST(faults)
{
	if (test__start_subtest("bpf_calls") && kenv_get())
		each_failure("bpf");
	if (test__start_subtest("mmaps") && kenv_get())
		each_failure("mmap");
	if (test__start_subtest("allocations") && kenv_get())
		each_failure("alloc");
	if (test__start_subtest("ctrl_c") && kenv_get())
		ctrl_c();
}
