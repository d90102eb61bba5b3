// SPDX-License-Identifier: GPL-2.0
/* Which capabilities loading and running our XDP-type programs needs. */
#include <linux/capability.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "caps.h"

#ifndef CAP_BPF
#define CAP_BPF 39
#endif

static bool have_cap(const struct __user_cap_data_struct *d, int cap)
{
	return d[cap / 32].effective & (1u << (cap % 32));
}

/*
 * BPF_PROG_LOAD of an XDP program needs CAP_BPF and CAP_NET_ADMIN (XDP is
 * a networking type), or CAP_SYS_ADMIN for both.  Returns true if we have
 * them; otherwise fills @why with the missing ones.
 */
bool bk_caps_ok(char *why, size_t len)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[2] = {};
	bool sys_admin, bpf, net_admin;

	if (syscall(SYS_capget, &h, d)) {
		snprintf(why, len, "cannot read capabilities");
		return false;
	}
	sys_admin = have_cap(d, CAP_SYS_ADMIN);
	bpf = have_cap(d, CAP_BPF) || sys_admin;
	net_admin = have_cap(d, CAP_NET_ADMIN) || sys_admin;
	if (bpf && net_admin)
		return true;
	snprintf(why, len, "missing capability %s%s%s (or CAP_SYS_ADMIN): run as root",
		 bpf ? "" : "CAP_BPF", !bpf && !net_admin ? " and " : "",
		 net_admin ? "" : "CAP_NET_ADMIN");
	return false;
}
