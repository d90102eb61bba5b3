// SPDX-License-Identifier: GPL-2.0
/*
 * Fault injection for the loader, LD_PRELOADed (tests/test_faults.c):
 *
 *   BK_FAULT=bpf:N     the Nth bpf() system call fails with ENOMEM
 *   BK_FAULT=mmap:N    the Nth mmap() fails with ENOMEM
 *   BK_FAULT=alloc:N   the Nth malloc(), calloc() or realloc() returns NULL
 *   (unset)            nothing fails: the calls are only counted
 *
 * Counted are the bpf() calls (libbpf makes them through syscall()), and
 * the mmap() and allocation calls made by the loader itself or by libbpf:
 * glibc's own (stdio buffers, say) vary from run to run and are not ours
 * to handle.  At exit the shim appends "bpf B mmap M alloc A hit H" to the
 * file BK_FAULT_REPORT, and checks that the process holds no BPF program,
 * map or BTF object (an fd, or a mapping of a map): a leak is written
 * there too, and the process exits 99.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <link.h>
#include <errno.h>
#include <execinfo.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <linux/bpf.h>
#include <sys/syscall.h>
#include <unistd.h>

enum { F_NONE, F_BPF, F_MMAP, F_ALLOC };

static int fault_kind = -1;		/* -1: BK_FAULT not read yet */
static unsigned long fault_at;
static unsigned long nr_bpf, nr_mmap, nr_alloc, hit;
static char failed[64];			/* the call that failed */
static __thread int in_shim;		/* the shim's own calls are not counted */
static long (*real_syscall)(long, ...);
/* the code whose calls are counted: the main program's and libbpf's */
static struct { uintptr_t lo, hi; } ours[2];
static int nr_ours;
static void *(*real_mmap)(void *, size_t, int, int, int, off_t);

extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t size);

static void read_env(void)
{
	const char *s = getenv("BK_FAULT");

	fault_kind = F_NONE;
	if (!s)
		return;
	if (!strncmp(s, "bpf:", 4))
		fault_kind = F_BPF;
	else if (!strncmp(s, "mmap:", 5))
		fault_kind = F_MMAP;
	else if (!strncmp(s, "alloc:", 6))
		fault_kind = F_ALLOC;
	if (fault_kind != F_NONE)
		fault_at = strtoul(strchr(s, ':') + 1, NULL, 10);
}

/* The address range of an object's loaded segments. */
static int find_ours(struct dl_phdr_info *info, size_t size, void *data)
{
	uintptr_t lo = UINTPTR_MAX, hi = 0;
	int i;

	(void)size;
	(void)data;
	if (nr_ours >= 2 || (info->dlpi_name[0] && !strstr(info->dlpi_name, "/libbpf.so")))
		return 0;
	for (i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];

		if (ph->p_type != PT_LOAD)
			continue;
		if (info->dlpi_addr + ph->p_vaddr < lo)
			lo = info->dlpi_addr + ph->p_vaddr;
		if (info->dlpi_addr + ph->p_vaddr + ph->p_memsz > hi)
			hi = info->dlpi_addr + ph->p_vaddr + ph->p_memsz;
	}
	ours[nr_ours].lo = lo;
	ours[nr_ours++].hi = hi;
	return 0;
}

static int called_by_ours(const void *ret)
{
	int i;

	for (i = 0; i < nr_ours; i++)
		if ((uintptr_t)ret >= ours[i].lo && (uintptr_t)ret < ours[i].hi)
			return 1;
	return 0;
}

__attribute__((constructor)) static void shim_init(void)
{
	in_shim++;
	read_env();
	dl_iterate_phdr(find_ours, NULL);
	real_syscall = (long (*)(long, ...))dlsym(RTLD_NEXT, "syscall");
	real_mmap = (void *(*)(void *, size_t, int, int, int, off_t))dlsym(RTLD_NEXT, "mmap");
	in_shim--;
}

/* Counts a call of @kind; whether it is the one that fails. */
static int fails(int kind, unsigned long *count)
{
	if (in_shim || fault_kind < 0)
		return 0;
	++*count;
	if (fault_kind != kind || *count != fault_at)
		return 0;
	hit++;
	if (getenv("BK_FAULT_BACKTRACE")) {	/* where it hit, for debugging */
		void *bt[32];
		int n;

		in_shim++;
		n = backtrace(bt, 32);
		backtrace_symbols_fd(bt, n, 2);
		in_shim--;
	}
	return 1;
}

long syscall(long nr, ...)
{
	long a[6];
	va_list ap;
	int i;

	va_start(ap, nr);
	for (i = 0; i < 6; i++)
		a[i] = va_arg(ap, long);
	va_end(ap);
	if (nr == __NR_bpf && fails(F_BPF, &nr_bpf)) {
		const union bpf_attr *attr = (const void *)a[1];

		if (a[0] == BPF_PROG_LOAD)
			snprintf(failed, sizeof(failed), "PROG_LOAD %.16s", attr->prog_name);
		else
			snprintf(failed, sizeof(failed), "bpf cmd %ld", a[0]);
		errno = ENOMEM;
		return -1;
	}
	return real_syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
}

void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	if (called_by_ours(__builtin_return_address(0)) && fails(F_MMAP, &nr_mmap)) {
		snprintf(failed, sizeof(failed), "mmap %zu bytes, fd %d", len, fd);
		errno = ENOMEM;
		return MAP_FAILED;
	}
	return real_mmap(addr, len, prot, flags, fd, off);
}

void *malloc(size_t size)
{
	if (called_by_ours(__builtin_return_address(0)) && fails(F_ALLOC, &nr_alloc)) {
		errno = ENOMEM;
		return NULL;
	}
	return __libc_malloc(size);
}

void *calloc(size_t n, size_t size)
{
	if (called_by_ours(__builtin_return_address(0)) && fails(F_ALLOC, &nr_alloc)) {
		errno = ENOMEM;
		return NULL;
	}
	return __libc_calloc(n, size);
}

void *realloc(void *p, size_t size)
{
	if (called_by_ours(__builtin_return_address(0)) && fails(F_ALLOC, &nr_alloc)) {
		errno = ENOMEM;
		return NULL;
	}
	return __libc_realloc(p, size);
}

/* BPF objects this process still holds: fds by kind, mappings of maps. */
static void held_objects(long *progs, long *maps, long *btfs, long *map_mmaps)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	FILE *f;
	char line[512];

	*progs = *maps = *btfs = *map_mmaps = 0;
	while (d && (de = readdir(d))) {
		char path[300], link[PATH_MAX];
		ssize_t n;

		snprintf(path, sizeof(path), "/proc/self/fd/%s", de->d_name);
		n = readlink(path, link, sizeof(link) - 1);
		if (n < 0)
			continue;
		link[n] = 0;
		*progs += !strcmp(link, "anon_inode:bpf-prog");
		*maps += !strcmp(link, "anon_inode:bpf-map");
		*btfs += !strcmp(link, "anon_inode:btf");
	}
	if (d)
		closedir(d);
	f = fopen("/proc/self/maps", "r");
	while (f && fgets(line, sizeof(line), f))
		*map_mmaps += strstr(line, "anon_inode:bpf-map") != NULL;
	if (f)
		fclose(f);
}

__attribute__((destructor)) static void shim_exit(void)
{
	const char *path = getenv("BK_FAULT_REPORT");
	long progs, maps, btfs, map_mmaps;
	FILE *f;

	in_shim++;
	held_objects(&progs, &maps, &btfs, &map_mmaps);
	f = path ? fopen(path, "a") : NULL;
	if (f) {
		fprintf(f, "bpf %lu mmap %lu alloc %lu hit %lu\n", nr_bpf, nr_mmap, nr_alloc, hit);
		if (failed[0])
			fprintf(f, "failed: %s\n", failed);
		if (progs || maps || btfs || map_mmaps)
			fprintf(f, "leaked: %ld program fds, %ld map fds, %ld BTF fds, %ld mapped maps\n",
				progs, maps, btfs, map_mmaps);
		fclose(f);
	}
	if (progs || maps || btfs || map_mmaps)
		_exit(99);
	in_shim--;
}
