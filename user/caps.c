// SPDX-License-Identifier: GPL-2.0
/* Which capabilities loading and running our programs needs (gen/gen.h, BK_PROG_TYPE). */
#include <linux/capability.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "caps.h"

#ifndef CAP_PERFMON
#define CAP_PERFMON 38
#endif
#ifndef CAP_BPF
#define CAP_BPF 39
#endif

static bool have_cap(const struct __user_cap_data_struct *d, int cap)
{
	return d[cap / 32].effective & (1u << (cap % 32));
}

/* This process's capability sets: 0, or -1 with errno. */
static int read_caps(struct __user_cap_data_struct d[2])
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };

	return syscall(SYS_capget, &h, d);
}

/*
 * Our programs are socket filters: the maps, the BTF and the programs
 * need CAP_BPF, and the programs' loops need CAP_PERFMON, without which
 * the verifier also walks every branch's mispredicted path (Spectre v1)
 * and gives up on them.  CAP_SYS_ADMIN stands for both, as the kernel's
 * bpf_capable() and perfmon_capable() say.  Nothing needs CAP_NET_ADMIN.
 * Returns true if we have them; otherwise fills @why with the missing
 * ones.
 */
bool bk_caps_ok(char *why, size_t len)
{
	struct __user_cap_data_struct d[2] = {};
	bool sys_admin, bpf, perfmon;

	if (read_caps(d)) {
		snprintf(why, len, "cannot read capabilities");
		return false;
	}
	sys_admin = have_cap(d, CAP_SYS_ADMIN);
	bpf = have_cap(d, CAP_BPF) || sys_admin;
	perfmon = have_cap(d, CAP_PERFMON) || sys_admin;
	if (bpf && perfmon)
		return true;
	snprintf(why, len, "missing capability %s%s%s: run as root, or grant CAP_BPF and "
		 "CAP_PERFMON",
		 bpf ? "" : "CAP_BPF (maps, BTF, programs)", !bpf && !perfmon ? " and " : "",
		 perfmon ? "" : "CAP_PERFMON (the verifier rejects the programs' loops "
				"without it: it would also walk mispredicted branches)");
	return false;
}

bool bk_have_cap(int cap)
{
	struct __user_cap_data_struct d[2] = {};

	return !read_caps(d) && have_cap(d, cap);
}
