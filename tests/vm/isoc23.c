// SPDX-License-Identifier: GPL-2.0
/*
 * make vmtest ARCH=riscv64 only.  Debian ships riscv64 from sid alone, and
 * sid's static libbpf/libelf were built against glibc >= 2.38, whose
 * headers redirect scanf and strto* to the C23 entry points (__isoc23_*:
 * they also accept 0b binary).  The cross glibc of Debian 12 is 2.36 and
 * lacks them: map them to the C99 ones.  The libraries never parse binary
 * literals.  Linked into the riscv64 test binary and nowhere else.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

int __isoc99_vsscanf(const char *s, const char *fmt, va_list ap);
int __isoc99_vfscanf(FILE *f, const char *fmt, va_list ap);

int __isoc23_vsscanf(const char *s, const char *fmt, va_list ap);
int __isoc23_vfscanf(FILE *f, const char *fmt, va_list ap);
int __isoc23_sscanf(const char *s, const char *fmt, ...);
int __isoc23_fscanf(FILE *f, const char *fmt, ...);
int __isoc23_scanf(const char *fmt, ...);
long __isoc23_strtol(const char *s, char **end, int base);
unsigned long __isoc23_strtoul(const char *s, char **end, int base);
long long __isoc23_strtoll(const char *s, char **end, int base);
unsigned long long __isoc23_strtoull(const char *s, char **end, int base);

int __isoc23_vsscanf(const char *s, const char *fmt, va_list ap)
{
	return __isoc99_vsscanf(s, fmt, ap);
}

int __isoc23_vfscanf(FILE *f, const char *fmt, va_list ap)
{
	return __isoc99_vfscanf(f, fmt, ap);
}

int __isoc23_sscanf(const char *s, const char *fmt, ...)
{
	va_list ap;
	int ret;

	va_start(ap, fmt);
	ret = __isoc99_vsscanf(s, fmt, ap);
	va_end(ap);
	return ret;
}

int __isoc23_fscanf(FILE *f, const char *fmt, ...)
{
	va_list ap;
	int ret;

	va_start(ap, fmt);
	ret = __isoc99_vfscanf(f, fmt, ap);
	va_end(ap);
	return ret;
}

int __isoc23_scanf(const char *fmt, ...)
{
	va_list ap;
	int ret;

	va_start(ap, fmt);
	ret = __isoc99_vfscanf(stdin, fmt, ap);
	va_end(ap);
	return ret;
}

long __isoc23_strtol(const char *s, char **end, int base)
{
	return strtol(s, end, base);
}

unsigned long __isoc23_strtoul(const char *s, char **end, int base)
{
	return strtoul(s, end, base);
}

long long __isoc23_strtoll(const char *s, char **end, int base)
{
	return strtoll(s, end, base);
}

unsigned long long __isoc23_strtoull(const char *s, char **end, int base)
{
	return strtoull(s, end, base);
}
