// SPDX-License-Identifier: GPL-2.0
/*
 * A generated program as a relocatable BPF ELF object, laid out as clang
 * emits one, so that libbpf (bpf_object__open), bpftool (prog load, gen
 * skeleton) and llvm-objdump take it like any other:
 *
 *   "socket"      the instructions (libbpf: a socket filter), each map
 *                 reference an ld_imm64 of 0 with a relocation
 *   ".relsocket"  R_BPF_64_64 against the map's symbol, one per reference
 *   "license"     "GPL"
 *   ".maps"       a BTF-defined map per map referenced (zeroed data: the
 *                 definition is the BTF type of its variable)
 *   ".BTF"        the program's BTF (bk_prog_btf()) plus the maps' types
 *   ".BTF.ext"    func_info and line_info: the listing's source lines
 *   ".symtab", ".strtab"
 *
 * Programs with callbacks (the bpf_loop shape) would need the callbacks
 * in ".text" and call relocations; they are refused with -EOPNOTSUPP.
 */
#include <elf.h>
#include <endian.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/btf.h>

#include "gen.h"

#define PROG_SEC	"socket"	/* libbpf's name for BPF_PROG_TYPE_SOCKET_FILTER */
#define BTF_EXT_MAGIC	0xeB9F
#define MAP_DEF_FIELDS	5		/* type, key_size, value_size, max_entries, map_flags */
#define MAP_DEF_SIZE	(MAP_DEF_FIELDS * 8)	/* each a pointer in the map's struct */

enum obj_sec { S_NULL, S_STRTAB, S_PROG, S_REL, S_LICENSE, S_MAPS, S_BTF, S_BTF_EXT, S_SYMTAB,
	       NR_SECS };

/* A growing byte buffer; a failed allocation sticks in ->err. */
struct buf {
	uint8_t	*p;
	size_t	len, cap;
	int	err;
};

/* Appends @len bytes (zeros if @data is NULL); returns where they start. */
static size_t buf_add(struct buf *b, const void *data, size_t len)
{
	size_t at = b->len;

	if (b->err)
		return at;
	if (b->len + len > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		uint8_t *p;

		while (cap < b->len + len)
			cap *= 2;
		p = realloc(b->p, cap);
		if (!p) {
			b->err = -ENOMEM;
			return at;
		}
		b->p = p;
		b->cap = cap;
	}
	if (data)
		memcpy(b->p + b->len, data, len);
	else
		memset(b->p + b->len, 0, len);
	b->len += len;
	return at;
}

static uint32_t buf_str(struct buf *b, const char *s)
{
	return (uint32_t)buf_add(b, s, strlen(s) + 1);
}

static void buf_align(struct buf *b, size_t a)
{
	if (b->len % a)
		buf_add(b, NULL, a - b->len % a);
}

static void buf_u32(struct buf *b, uint32_t v)
{
	buf_add(b, &v, sizeof(v));
}

static int fail(char *err, size_t len, int ret, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int fail(char *err, size_t len, int ret, const char *fmt, ...)
{
	va_list ap;

	if (err && len) {
		va_start(ap, fmt);
		vsnprintf(err, len, fmt, ap);
		va_end(ap);
	}
	return ret;
}

/* What the program refers to: which maps, and where. */
struct obj_refs {
	struct bpf_insn	*insn;		/* the program, map references zeroed */
	int		cnt;
	int		map_of[BK_MAX_INSNS];	/* per ld_imm64 of a map: its map, else -1 */
	int		sym_of_map[64];	/* symbol of each of @maps used, else 0 */
	unsigned	nr_used;
};

static bool is_map_ref(const struct bpf_insn *in)
{
	return in->code == (BPF_LD | BPF_DW | BPF_IMM) && in->src_reg == BPF_PSEUDO_MAP_FD;
}

static int find_refs(const struct bk_prog *p, const struct bk_obj_map *maps, unsigned nr_maps,
		     struct obj_refs *r, char *err, size_t err_len)
{
	int i;
	unsigned m;

	r->cnt = p->e.cnt;
	r->insn = malloc(sizeof(*r->insn) * (p->e.cnt + 1));
	if (!r->insn)
		return -ENOMEM;
	memcpy(r->insn, p->e.insn, sizeof(*r->insn) * p->e.cnt);
	memset(r->sym_of_map, 0, sizeof(r->sym_of_map));
	for (i = 0; i < r->cnt; i++)
		r->map_of[i] = -1;
	for (i = 0; i < r->cnt; i++) {
		struct bpf_insn *in = &r->insn[i];

		if (in->code == (BPF_LD | BPF_DW | BPF_IMM) && in->src_reg &&
		    in->src_reg != BPF_PSEUDO_MAP_FD)
			return fail(err, err_len, -EOPNOTSUPP, "instruction %d: ld_imm64 of kind %u "
				    "(only maps have relocations here)", i, in->src_reg);
		if (in->code == (BPF_JMP | BPF_CALL) && in->src_reg == BPF_PSEUDO_CALL)
			return fail(err, err_len, -EOPNOTSUPP, "instruction %d calls a subprogram", i);
		if (!is_map_ref(in))
			continue;
		for (m = 0; m < nr_maps && maps[m].fd != in->imm; m++)
			;
		if (m == nr_maps)
			return fail(err, err_len, -EINVAL, "instruction %d refers to map fd %d, "
				    "which is none of the object's maps", i, in->imm);
		r->map_of[i] = m;
		if (!r->sym_of_map[m])
			r->sym_of_map[m] = 2 + r->nr_used++;	/* symbols 2.. (1: the program) */
		/* as clang leaves it: libbpf sets src_reg and the fd */
		in->src_reg = 0;
		in->imm = 0;
		if (i + 1 < r->cnt)
			r->insn[i + 1].imm = 0;
		i++;
	}
	return 0;
}

/* int (*name)[value]: how a BTF-defined map says a number (__uint()). */
static int btf_uint_ptr(struct btf *btf, int int_id, uint32_t value, int *err)
{
	int arr = bk_btf_ok(btf__add_array(btf, int_id, int_id, value), err);

	return arr < 0 ? arr : bk_btf_ok(btf__add_ptr(btf, arr), err);
}

/* The maps used, as BTF-defined maps: a VAR each in DATASEC ".maps". */
static void btf_add_maps(struct btf *btf, const struct bk_obj_map *maps, unsigned nr_maps,
			 const struct obj_refs *r, int *err)
{
	static const char *const field[MAP_DEF_FIELDS] = {
		"type", "key_size", "value_size", "max_entries", "map_flags",
	};
	int int_id = btf__find_by_name_kind(btf, "int", BTF_KIND_INT);
	int var[64] = {}, ds, f, ptr[MAP_DEF_FIELDS], st;
	unsigned m;

	if (int_id < 0) {
		*err = *err ?: -EINVAL;
		return;
	}
	for (m = 0; m < nr_maps; m++) {
		const uint32_t v[MAP_DEF_FIELDS] = {
			maps[m].type, maps[m].key_size, maps[m].value_size, maps[m].max_entries,
			maps[m].flags,
		};

		if (!r->sym_of_map[m])
			continue;
		for (f = 0; f < MAP_DEF_FIELDS; f++)
			ptr[f] = btf_uint_ptr(btf, int_id, v[f], err);
		st = bk_btf_ok(btf__add_struct(btf, NULL, MAP_DEF_SIZE), err);
		for (f = 0; f < MAP_DEF_FIELDS; f++)
			bk_btf_ok(btf__add_field(btf, field[f], ptr[f], f * 64, 0), err);
		var[m] = bk_btf_ok(btf__add_var(btf, maps[m].name, BTF_VAR_GLOBAL_ALLOCATED, st),
				   err);
	}
	/* in the order of their places in the section, as the kernel wants */
	ds = bk_btf_ok(btf__add_datasec(btf, ".maps", r->nr_used * MAP_DEF_SIZE), err);
	for (f = 2; ds > 0 && f < 2 + (int)r->nr_used; f++)
		for (m = 0; m < nr_maps; m++)
			if (r->sym_of_map[m] == f)
				bk_btf_ok(btf__add_datasec_var_info(btf, var[m],
								    (f - 2) * MAP_DEF_SIZE,
								    MAP_DEF_SIZE), err);
}

/*
 * .BTF.ext: its header, then func_info and line_info, each a record size
 * and one block for section @sec_off (a BTF string); instruction offsets
 * in bytes, as in an object file (libbpf turns them into indices).
 */
static void btf_ext(struct buf *b, uint32_t sec_off, const struct bpf_func_info *fi, int nr_fi,
		    const struct bpf_line_info *li, int nr_li)
{
	uint32_t fi_len = 4 + 8 + nr_fi * sizeof(*fi), li_len = 4 + 8 + nr_li * sizeof(*li);
	uint16_t magic = BTF_EXT_MAGIC;
	uint8_t version = 1, flags = 0;
	int i;

	buf_add(b, &magic, 2);
	buf_add(b, &version, 1);
	buf_add(b, &flags, 1);
	buf_u32(b, 24);			/* hdr_len: no CO-RE relocations */
	buf_u32(b, 0);			/* func_info_off, after the header */
	buf_u32(b, fi_len);
	buf_u32(b, fi_len);		/* line_info_off */
	buf_u32(b, li_len);
	buf_u32(b, sizeof(*fi));
	buf_u32(b, sec_off);
	buf_u32(b, nr_fi);
	for (i = 0; i < nr_fi; i++) {
		buf_u32(b, fi[i].insn_off * sizeof(struct bpf_insn));
		buf_u32(b, fi[i].type_id);
	}
	buf_u32(b, sizeof(*li));
	buf_u32(b, sec_off);
	buf_u32(b, nr_li);
	for (i = 0; i < nr_li; i++) {
		buf_u32(b, li[i].insn_off * sizeof(struct bpf_insn));
		buf_u32(b, li[i].file_name_off);
		buf_u32(b, li[i].line_off);
		buf_u32(b, li[i].line_col);
	}
}

static void sym(struct buf *b, uint32_t name, unsigned char info, uint16_t shndx,
		uint64_t value, uint64_t size)
{
	Elf64_Sym s = {
		.st_name = name, .st_info = info, .st_shndx = shndx,
		.st_value = value, .st_size = size,
	};

	buf_add(b, &s, sizeof(s));
}

/* The object's bytes: every section, then the section headers. */
static int build(const struct bk_prog *p, const struct bk_obj_map *maps, unsigned nr_maps,
		 const struct obj_refs *r, const void *btf_raw, uint32_t btf_size,
		 const struct buf *ext, struct buf *out)
{
	static const char license[] = "GPL";
	struct buf str = {}, rel = {}, syms = {};
	Elf64_Shdr sh[NR_SECS] = {};
	Elf64_Ehdr eh = {
		.e_ident = { ELFMAG0, ELFMAG1, ELFMAG2, ELFMAG3, ELFCLASS64,
			     __BYTE_ORDER == __LITTLE_ENDIAN ? ELFDATA2LSB : ELFDATA2MSB,
			     EV_CURRENT, ELFOSABI_NONE },
		.e_type = ET_REL, .e_machine = EM_BPF, .e_version = EV_CURRENT,
		.e_ehsize = sizeof(Elf64_Ehdr), .e_shentsize = sizeof(Elf64_Shdr),
		.e_shnum = NR_SECS, .e_shstrndx = S_STRTAB,
	};
	static const char *const sec_name[NR_SECS] = {
		[S_STRTAB] = ".strtab", [S_PROG] = PROG_SEC, [S_REL] = ".rel" PROG_SEC,
		[S_LICENSE] = "license", [S_MAPS] = ".maps", [S_BTF] = ".BTF",
		[S_BTF_EXT] = ".BTF.ext", [S_SYMTAB] = ".symtab",
	};
	unsigned m, s;
	size_t shoff;
	int i, ret;

	buf_add(&str, NULL, 1);
	for (s = 1; s < NR_SECS; s++)
		sh[s].sh_name = buf_str(&str, sec_name[s]);

	/* symbols: null, the program, the maps in the order of their slots, LICENSE */
	sym(&syms, 0, 0, SHN_UNDEF, 0, 0);
	sym(&syms, buf_str(&str, p->func_name), ELF64_ST_INFO(STB_GLOBAL, STT_FUNC), S_PROG, 0,
	    (uint64_t)r->cnt * sizeof(struct bpf_insn));
	for (s = 2; s < 2 + r->nr_used; s++)
		for (m = 0; m < nr_maps; m++)
			if (r->sym_of_map[m] == (int)s)
				sym(&syms, buf_str(&str, maps[m].name),
				    ELF64_ST_INFO(STB_GLOBAL, STT_OBJECT), S_MAPS,
				    (s - 2) * MAP_DEF_SIZE, MAP_DEF_SIZE);
	sym(&syms, buf_str(&str, "LICENSE"), ELF64_ST_INFO(STB_GLOBAL, STT_OBJECT), S_LICENSE, 0,
	    sizeof(license));
	for (i = 0; i < r->cnt; i++) {
		Elf64_Rel rl;

		if (r->map_of[i] < 0)
			continue;
		rl.r_offset = (uint64_t)i * sizeof(struct bpf_insn);
		rl.r_info = ELF64_R_INFO(r->sym_of_map[r->map_of[i]], R_BPF_64_64);
		buf_add(&rel, &rl, sizeof(rl));
	}

	buf_add(out, &eh, sizeof(eh));
#define SECTION(idx, type, flags, data, size, align)				\
	do {									\
		buf_align(out, align);						\
		sh[idx] = (Elf64_Shdr){ .sh_name = sh[idx].sh_name, .sh_type = (type), \
			.sh_flags = (flags), .sh_addralign = (align), .sh_size = (size), \
			.sh_offset = buf_add(out, (data), (size)) };		\
	} while (0)
	SECTION(S_PROG, SHT_PROGBITS, SHF_ALLOC | SHF_EXECINSTR, r->insn,
		(size_t)r->cnt * sizeof(struct bpf_insn), 8);
	SECTION(S_REL, SHT_REL, 0, rel.p, rel.len, 8);
	sh[S_REL].sh_link = S_SYMTAB;
	sh[S_REL].sh_info = S_PROG;
	sh[S_REL].sh_entsize = sizeof(Elf64_Rel);
	SECTION(S_LICENSE, SHT_PROGBITS, SHF_ALLOC | SHF_WRITE, license, sizeof(license), 1);
	SECTION(S_MAPS, SHT_PROGBITS, SHF_ALLOC | SHF_WRITE, NULL,
		(size_t)r->nr_used * MAP_DEF_SIZE, 8);
	SECTION(S_BTF, SHT_PROGBITS, 0, btf_raw, btf_size, 4);
	SECTION(S_BTF_EXT, SHT_PROGBITS, 0, ext->p, ext->len, 4);
	SECTION(S_SYMTAB, SHT_SYMTAB, 0, syms.p, syms.len, 8);
	sh[S_SYMTAB].sh_link = S_STRTAB;
	sh[S_SYMTAB].sh_info = 1;	/* the first global: all but the null symbol */
	sh[S_SYMTAB].sh_entsize = sizeof(Elf64_Sym);
	SECTION(S_STRTAB, SHT_STRTAB, 0, str.p, str.len, 1);
#undef SECTION
	buf_align(out, 8);
	shoff = buf_add(out, sh, sizeof(sh));
	if (!out->err)
		((Elf64_Ehdr *)out->p)->e_shoff = shoff;
	ret = str.err ?: rel.err ?: syms.err ?: out->err;
	free(str.p);
	free(rel.p);
	free(syms.p);
	return ret;
}

/* @len bytes to @path, through a temporary file renamed into place. */
static int write_file(const char *path, const void *data, size_t len, char *err, size_t err_len)
{
	char tmp[4096];
	FILE *f;
	int ret = 0;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return fail(err, err_len, -ENAMETOOLONG, "%s: name too long", path);
	f = fopen(tmp, "wb");
	if (!f)
		return fail(err, err_len, -errno, "cannot write %s: %s", tmp, strerror(errno));
	if (fwrite(data, 1, len, f) != len)
		ret = -errno ?: -EIO;
	if (fclose(f) && !ret)
		ret = -errno;
	if (!ret && rename(tmp, path))
		ret = -errno;
	if (ret) {
		unlink(tmp);
		return fail(err, err_len, ret, "cannot write %s: %s", path, strerror(-ret));
	}
	return 0;
}

int bk_prog_write_obj(const struct bk_prog *p, const struct bk_obj_map *maps,
		      unsigned nr_maps, const char *path, char *err, size_t err_len)
{
	struct bpf_func_info fi[4];
	struct bpf_line_info li[BK_MAX_LINES];
	struct obj_refs r = {};
	struct buf ext = {}, out = {};
	struct btf *btf = NULL;
	const void *raw;
	uint32_t raw_size;
	int ret = 0, sec_off;

	if (nr_maps > sizeof(r.sym_of_map) / sizeof(r.sym_of_map[0]))
		return fail(err, err_len, -E2BIG, "%u maps: at most 64", nr_maps);
	if (p->e.nr_subprogs > 1)
		return fail(err, err_len, -EOPNOTSUPP, "%s has callbacks (the bpf_loop shape): "
			    "only programs of one function are written as objects", p->name);
	ret = find_refs(p, maps, nr_maps, &r, err, err_len);
	if (ret)
		goto out;
	btf = bk_prog_btf(p, fi, li, &ret);
	if (!btf) {
		fail(err, err_len, ret, "building the BTF failed: %s", strerror(-ret));
		goto out;
	}
	btf_add_maps(btf, maps, nr_maps, &r, &ret);
	sec_off = bk_btf_ok(btf__add_str(btf, PROG_SEC), &ret);
	raw = ret ? NULL : btf__raw_data(btf, &raw_size);
	if (!raw) {
		ret = ret ?: -ENOMEM;
		fail(err, err_len, ret, "building the BTF failed: %s", strerror(-ret));
		goto out;
	}
	btf_ext(&ext, sec_off, fi, p->e.nr_subprogs, li, p->e.nr_lines);
	ret = ext.err ?: build(p, maps, nr_maps, &r, raw, raw_size, &ext, &out);
	if (ret) {
		fail(err, err_len, ret, "building the object failed: %s", strerror(-ret));
		goto out;
	}
	ret = write_file(path, out.p, out.len, err, err_len);
out:
	btf__free(btf);
	free(r.insn);
	free(ext.p);
	free(out.p);
	return ret;
}
