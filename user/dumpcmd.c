// SPDX-License-Identifier: GPL-2.0
/*
 * loader dump: a program's JIT'd machine code, disassembled by objdump for
 * this machine's architecture (Debian's bpftool is built without libbfd).
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "caps.h"
#include "cmd.h"

void dump_usage(FILE *out, const char *prog)
{
	fprintf(out,
"Usage: %s dump (--format FMT [--kind unpack|lookup] [--walk u64s|table] | --id ID |\n"
"               --pinned PATH)\n"
"\n"
"Prints a program's JIT'd machine code, disassembled by objdump (binutils)\n"
"for this machine's architecture, or as hex bytes without it. With --format\n"
"it generates and loads the format's program (an unpack program, or a\n"
"lookup program for --kind lookup; --walk as for 'gen'), dumps it and\n"
"releases it; --id and --pinned dump a program already loaded, such as one\n"
"pinned by 'run --pin'.\n"
"Debian's bpftool cannot do this: it is built without libbfd.\n", prog);
}

static const char *objdump_arch(void)
{
#if defined(__x86_64__)
	return "i386:x86-64";
#elif defined(__aarch64__)
	return "aarch64";
#elif defined(__riscv)
	return "riscv:rv64";
#else
	return NULL;
#endif
}

/* The JIT image of @fd, disassembled (or in hex) on stdout. */
static int dump_jited(int fd)
{
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info), size;
	unsigned char *buf;
	char path[] = "/tmp/bkey-jit.XXXXXX", cmd[256], name[BPF_OBJ_NAME_LEN];
	const char *arch = objdump_arch();
	int tmp, ret = 0;
	__u32 i, id;

	/* once for the size, once for the bytes */
	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		return -errno;
	size = info.jited_prog_len;
	id = info.id;
	memcpy(name, info.name, sizeof(name));
	if (!size) {
		fprintf(stderr, "%s: program %u has no JIT image (is the JIT off?)\n", prog_name, id);
		return -ENOENT;
	}
	buf = malloc(size);
	if (!buf)
		return -ENOMEM;
	memset(&info, 0, sizeof(info));
	info.jited_prog_len = size;
	info.jited_prog_insns = (unsigned long)buf;
	len = sizeof(info);
	if (bpf_obj_get_info_by_fd(fd, &info, &len)) {
		free(buf);
		return -errno;
	}
	printf("# prog id %u \"%s\": %u bytes of JIT'd code\n", id, name, size);
	fflush(stdout);
	tmp = mkstemp(path);
	if (tmp >= 0 && arch && !system("command -v objdump >/dev/null 2>&1") &&
	    write(tmp, buf, size) == (ssize_t)size) {
		snprintf(cmd, sizeof(cmd), "objdump -D -b binary -m%s %s | tail -n +8", arch, path);
		ret = system(cmd) ? -EIO : 0;
	} else {
		for (i = 0; i < size; i++)
			printf("%02x%s", buf[i], i % 16 == 15 ? "\n" : " ");
		printf("\n");
	}
	if (tmp >= 0) {
		close(tmp);
		unlink(path);
	}
	free(buf);
	return ret;
}

int dump_main(int argc, char **argv, const char *prog)
{
	static const struct option opts[] = {
		{ "format", required_argument, NULL, 'f' },
		{ "kind", required_argument, NULL, 'k' },
		{ "walk", required_argument, NULL, 'w' },
		{ "id", required_argument, NULL, 'i' },
		{ "pinned", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	const char *fmt = NULL, *kind = "unpack", *pinned = NULL;
	struct bk_runtime rt = { .ctl_fd = -1, .in_fd = -1, .out_fd = -1 };
	struct bk_loaded l = { .fd = -1 };
	struct bk_lookup_rt lr;
	enum bk_walk walk = BK_WALK_U64S;
	bool have_lr = false, walk_set = false;
	long id = -1;
	char why[160];
	int opt, ret, fd = -1;

	while ((opt = getopt_long(argc, argv, "f:k:w:i:p:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'f': fmt = optarg; break;
		case 'k': kind = optarg; break;
		case 'w':
			if (parse_walk(optarg, &walk))
				return EXIT_USAGE;
			walk_set = true;
			break;
		case 'i': id = atol(optarg); break;
		case 'p': pinned = optarg; break;
		case 'h': dump_usage(stdout, prog_name); return 0;
		default: dump_usage(stderr, prog_name); return EXIT_USAGE;
		}
	}
	if (!!fmt + (id >= 0) + !!pinned != 1 || (strcmp(kind, "unpack") && strcmp(kind, "lookup"))) {
		dump_usage(stderr, prog_name);
		return EXIT_USAGE;
	}
	if (walk_set && (!fmt || strcmp(kind, "unpack"))) {
		fprintf(stderr, "%s: --walk chooses an unpack program to generate: it needs "
			"--format and --kind unpack\n", prog_name);
		return EXIT_USAGE;
	}
	if (!bk_caps_ok(why, sizeof(why))) {
		fprintf(stderr, "%s: %s\n", prog_name, why);
		return EXIT_KERNEL;
	}
	if (id >= 0) {
		fd = bpf_prog_get_fd_by_id(id);
		if (fd < 0) {
			fprintf(stderr, "%s: no program with id %ld: %s\n", prog_name, id, strerror(errno));
			return EXIT_KERNEL;
		}
	} else if (pinned) {
		fd = bpf_obj_get(pinned);
		if (fd < 0) {
			fprintf(stderr, "%s: cannot open %s: %s\n", prog_name, pinned, strerror(errno));
			return EXIT_KERNEL;
		}
	} else {
		struct bk_gen_opts o = { .shape = BK_SHAPE_AUTO, .chunk = 1, .annotate = true,
					 .strict_align = bk_strict_align_default(), .walk = walk };
		struct bkey_format f;
		struct bk_prog *p = calloc(1, sizeof(*p));

		if (!p || parse_format_arg(fmt, &f)) {
			bk_prog_release(p);
			free(p);
			return EXIT_USAGE;
		}
		if (!strcmp(kind, "lookup")) {
			struct bk_search_opts so = { .node_size = 4096, .lookup = true,
						     .strict_align = o.strict_align };

			ret = bk_lookup_rt_open(&lr, 4096, 1, 1);
			have_lr = !ret;
			so.ctl_fd = lr.ctl_fd;
			so.nodes_fd = lr.nodes_fd;
			so.progs_fd = lr.progs_fd;
			if (!ret)
				ret = bk_gen_search(&f, &so, p, NULL);
			if (!ret)
				ret = bk_prog_load(p, &l, NULL, 0);
		} else {
			ret = open_kernel(&rt, &o);
			if (!ret)
				ret = gen_load_or_report(&f, &o, &rt, p, &l);
		}
		bk_prog_release(p);
		free(p);
		if (ret) {
			fprintf(stderr, "%s: cannot load the program: %s\n", prog_name, strerror(-ret));
			goto out;
		}
		fd = l.fd;
	}
	ret = dump_jited(fd);
	if (ret)
		fprintf(stderr, "%s: dump failed: %s\n", prog_name, strerror(-ret));
out:
	if (fd >= 0 && fd != l.fd)
		close(fd);
	bk_prog_unload(&l);
	bk_runtime_close(&rt);
	if (have_lr)
		bk_lookup_rt_close(&lr);
	return ret ? EXIT_KERNEL : 0;
}
