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
 * A program with bpf_loop callbacks has them in ".text", as static
 * functions (libbpf takes static functions from there only), each
 * reference an ld_imm64 of BPF_PSEUDO_FUNC with a relocation against the
 * section whose immediate is the callback's offset in it.
 */
#include <elf.h>
#include <endian.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include <bpf/btf.h>

#include "gen.h"

#define PROG_SEC	"socket"	/* libbpf's name for BPF_PROG_TYPE_SOCKET_FILTER */
#define TEXT_SEC	".text"		/* where libbpf wants static functions: the callbacks */
#define BTF_EXT_MAGIC	0xeB9F
#define MAP_DEF_FIELDS	5		/* type, key_size, value_size, max_entries, map_flags */
#define MAP_DEF_SIZE	(MAP_DEF_FIELDS * 8)	/* each a pointer in the map's struct */
#define MAX_SECS	12
#define MAX_MAPS	64

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

/*
 * The object's plan: the program's instructions as the object holds them
 * (the main function, then from @text_start the callbacks, which go to
 * .text), the maps they use and the symbols of everything.
 *
 * Symbols: 0 null; locals: the .text section (if callbacks), then each
 * callback; globals: the program, each map used (in order of first use),
 * LICENSE.
 */
struct obj_plan {
	struct bpf_insn	*insn;
	int		cnt, text_start;
	int		nr_funcs;		/* the program and its callbacks */
	int		*rel_sym;	/* per instruction: an ld_imm64's symbol to relocate, else 0 */
	int		map_slot[MAX_MAPS];	/* per map used: 1 + its place in .maps, else 0 */
	unsigned	nr_used;
	int		sym_text, sym_first_cb, sym_prog, sym_first_map, sym_license, nr_syms;
};

static bool is_ld_imm64(const struct bpf_insn *in)
{
	return in->code == (BPF_LD | BPF_DW | BPF_IMM);
}

/* Whether instruction @insn starts one of @p's callbacks (functions 1..). */
static bool starts_callback(const struct bk_prog *p, int insn)
{
	int f;

	for (f = 1; f < p->e.nr_subprogs; f++)
		if (p->e.subprog_start[f] == insn)
			return true;
	return false;
}

static int plan_obj(const struct bk_prog *p, const struct bk_obj_map *maps, unsigned nr_maps,
		    struct obj_plan *o, char *err, size_t err_len)
{
	int i, nr_locals;
	unsigned m;

	o->cnt = p->e.cnt;
	o->nr_funcs = p->e.nr_subprogs > 0 ? p->e.nr_subprogs : 1;
	o->text_start = o->nr_funcs > 1 ? p->e.subprog_start[1] : o->cnt;
	nr_locals = o->nr_funcs > 1 ? o->nr_funcs : 0;	/* .text, and each callback */
	o->sym_text = 1;
	o->sym_first_cb = 2;
	o->sym_prog = 1 + nr_locals;
	o->sym_first_map = o->sym_prog + 1;
	o->insn = malloc(sizeof(*o->insn) * (o->cnt + 1));
	o->rel_sym = calloc(o->cnt + 1, sizeof(*o->rel_sym));
	if (!o->insn || !o->rel_sym)
		return fail(err, err_len, -ENOMEM, "no memory for %d instructions", o->cnt);
	memcpy(o->insn, p->e.insn, sizeof(*o->insn) * o->cnt);
	memset(o->map_slot, 0, sizeof(o->map_slot));
	o->nr_used = 0;
	for (i = 0; i < o->cnt; i++) {
		struct bpf_insn *in = &o->insn[i];

		if (in->code == (BPF_JMP | BPF_CALL) && in->src_reg == BPF_PSEUDO_CALL)
			return fail(err, err_len, -EOPNOTSUPP, "instruction %d calls a function "
				    "directly: only bpf_loop callbacks are written", i);
		if (!is_ld_imm64(in) || i + 1 >= o->cnt)
			continue;
		if (in->src_reg == BPF_PSEUDO_FUNC) {
			int target = i + in->imm + 1;

			if (!starts_callback(p, target))
				return fail(err, err_len, -EINVAL, "instruction %d: a callback at %d, "
					    "where no callback starts", i, target);
			/* against .text's section symbol: imm = the offset in it */
			o->rel_sym[i] = o->sym_text;
			in->imm = (target - o->text_start) * (int)sizeof(*in);
		} else if (in->src_reg == BPF_PSEUDO_MAP_FD) {
			for (m = 0; m < nr_maps && maps[m].fd != in->imm; m++)
				;
			if (m == nr_maps)
				return fail(err, err_len, -EINVAL, "instruction %d refers to map fd "
					    "%d, which is none of the object's maps", i, in->imm);
			if (!o->map_slot[m])
				o->map_slot[m] = 1 + o->nr_used++;
			o->rel_sym[i] = o->sym_first_map + o->map_slot[m] - 1;
			/* as clang leaves it: libbpf sets src_reg and the fd */
			in->src_reg = 0;
			in->imm = 0;
		} else if (in->src_reg) {
			return fail(err, err_len, -EOPNOTSUPP, "instruction %d: ld_imm64 of kind %u "
				    "(maps and callbacks have relocations here)", i, in->src_reg);
		} else {
			i++;		/* a constant: as it is */
			continue;
		}
		o->insn[i + 1].imm = 0;
		i++;
	}
	o->sym_license = o->sym_first_map + o->nr_used;
	o->nr_syms = o->sym_license + 1;
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
			 const struct obj_plan *o, int *err)
{
	static const char *const field[MAP_DEF_FIELDS] = {
		"type", "key_size", "value_size", "max_entries", "map_flags",
	};
	int int_id = btf__find_by_name_kind(btf, "int", BTF_KIND_INT);
	int var[MAX_MAPS] = {}, ds, f, ptr[MAP_DEF_FIELDS], st;
	unsigned m, slot;

	if (int_id < 0) {	/* bk_prog_btf() adds it: never */
		*err = *err ?: -EINVAL;
		return;
	}
	for (m = 0; m < nr_maps; m++) {
		const uint32_t v[MAP_DEF_FIELDS] = {
			maps[m].type, maps[m].key_size, maps[m].value_size, maps[m].max_entries,
			maps[m].flags,
		};

		if (!o->map_slot[m])
			continue;
		for (f = 0; f < MAP_DEF_FIELDS; f++)
			ptr[f] = btf_uint_ptr(btf, int_id, v[f], err);
		st = bk_btf_ok(btf__add_struct(btf, NULL, MAP_DEF_SIZE), err);
		for (f = 0; f < MAP_DEF_FIELDS; f++)
			bk_btf_ok(btf__add_field(btf, field[f], ptr[f], f * 64, 0), err);
		var[m] = bk_btf_ok(btf__add_var(btf, maps[m].name, BTF_VAR_GLOBAL_ALLOCATED, st),
				   err);
	}
	/* in the order of their places in the section, as the kernel wants;
	 * none: no section (libbpf cannot size an empty one) */
	if (!o->nr_used)
		return;
	ds = bk_btf_ok(btf__add_datasec(btf, ".maps", o->nr_used * MAP_DEF_SIZE), err);
	for (slot = 1; ds > 0 && slot <= o->nr_used; slot++)
		for (m = 0; m < nr_maps; m++)
			if (o->map_slot[m] == (int)slot)
				bk_btf_ok(btf__add_datasec_var_info(btf, var[m],
								    (slot - 1) * MAP_DEF_SIZE,
								    MAP_DEF_SIZE), err);
}

/*
 * One block of .BTF.ext's func_info or line_info: the records (@rec bytes
 * each, the instruction first) of section @sec_off (a BTF string) whose
 * instructions lie in [@from, @to), with their offsets in bytes from
 * @from, as an object file has them (libbpf makes them indices).
 */
static void ext_block(struct buf *b, uint32_t sec_off, const void *recs, int nr, size_t rec,
		      int from, int to)
{
	const uint8_t *r = recs;
	uint32_t count = 0;
	size_t at;
	int i;

	for (i = 0; i < nr; i++) {
		uint32_t insn = *(const uint32_t *)(r + i * rec);

		count += (int)insn >= from && (int)insn < to;
	}
	if (!count)
		return;
	buf_u32(b, sec_off);
	buf_u32(b, count);
	for (i = 0; i < nr; i++) {
		uint32_t insn = *(const uint32_t *)(r + i * rec);

		if ((int)insn < from || (int)insn >= to)
			continue;
		at = buf_add(b, r + i * rec, rec);
		if (!b->err)
			*(uint32_t *)(b->p + at) = (insn - from) * sizeof(struct bpf_insn);
	}
}

/* .BTF.ext: its header, then func_info and line_info for "socket" and .text. */
static void btf_ext(struct buf *b, const struct obj_plan *o, uint32_t prog_sec_off,
		    uint32_t text_sec_off, const struct bpf_func_info *fi,
		    const struct bpf_line_info *li, int nr_li)
{
	struct buf fib = {}, lib = {};
	uint16_t magic = BTF_EXT_MAGIC;
	uint8_t version = 1, flags = 0;

	buf_u32(&fib, sizeof(*fi));
	ext_block(&fib, prog_sec_off, fi, o->nr_funcs, sizeof(*fi), 0, o->text_start);
	ext_block(&fib, text_sec_off, fi, o->nr_funcs, sizeof(*fi), o->text_start, o->cnt);
	buf_u32(&lib, sizeof(*li));
	ext_block(&lib, prog_sec_off, li, nr_li, sizeof(*li), 0, o->text_start);
	ext_block(&lib, text_sec_off, li, nr_li, sizeof(*li), o->text_start, o->cnt);
	/* a record size and no block: none at all (libbpf refuses the size alone) */
	if (fib.len == 4)
		fib.len = 0;
	if (lib.len == 4)
		lib.len = 0;
	buf_add(b, &magic, 2);
	buf_add(b, &version, 1);
	buf_add(b, &flags, 1);
	buf_u32(b, 24);			/* hdr_len: no CO-RE relocations */
	buf_u32(b, 0);			/* func_info_off, after the header */
	buf_u32(b, fib.len);
	buf_u32(b, fib.len);		/* line_info_off */
	buf_u32(b, lib.len);
	buf_add(b, fib.p, fib.len);
	buf_add(b, lib.p, lib.len);
	b->err = b->err ?: fib.err ?: lib.err;
	free(fib.p);
	free(lib.p);
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

/* The relocations of the instructions in [@from, @to), offsets from @from. */
static void relocs(struct buf *b, const struct obj_plan *o, int from, int to)
{
	int i;

	for (i = from; i < to; i++) {
		Elf64_Rel rl;

		if (!o->rel_sym[i])
			continue;
		rl.r_offset = (uint64_t)(i - from) * sizeof(struct bpf_insn);
		rl.r_info = ELF64_R_INFO(o->rel_sym[i], R_BPF_64_64);
		buf_add(b, &rl, sizeof(rl));
	}
}

struct obj_sec {
	const char	*name;
	Elf64_Shdr	sh;
	const void	*data;		/* NULL: sh_size zeros */
};

/* Section @s (its name, header and bytes) as the next one; returns its index. */
static int add_sec(struct obj_sec *secs, int *nr, const char *name, uint32_t type,
		   uint64_t flags, const void *data, size_t size, size_t align)
{
	secs[*nr] = (struct obj_sec){
		.name = name, .data = data,
		.sh = { .sh_type = type, .sh_flags = flags, .sh_size = size,
			.sh_addralign = align },
	};
	return (*nr)++;
}

/* The object's bytes: every section, then the section headers. */
static int build(const struct bk_prog *p, const struct bk_obj_map *maps, unsigned nr_maps,
		 const struct obj_plan *o, const void *btf_raw, uint32_t btf_size,
		 const struct buf *ext, struct buf *out)
{
	static const char license[] = "GPL";
	struct buf str = {}, rel_prog = {}, rel_text = {}, syms = {};
	struct obj_sec secs[MAX_SECS];
	Elf64_Shdr sh[MAX_SECS] = {};
	Elf64_Ehdr eh = {
		.e_ident = { ELFMAG0, ELFMAG1, ELFMAG2, ELFMAG3, ELFCLASS64,
			     __BYTE_ORDER == __LITTLE_ENDIAN ? ELFDATA2LSB : ELFDATA2MSB,
			     EV_CURRENT, ELFOSABI_NONE },
		.e_type = ET_REL, .e_machine = EM_BPF, .e_version = EV_CURRENT,
		.e_ehsize = sizeof(Elf64_Ehdr), .e_shentsize = sizeof(Elf64_Shdr),
	};
	bool text = o->text_start < o->cnt;
	size_t isz = sizeof(struct bpf_insn), shoff;
	int nr = 0, s_strtab, s_prog, s_text = 0, s_rel, s_rel_text, s_license, s_maps;
	int s_symtab, f, slot, ret;
	unsigned m;

	relocs(&rel_prog, o, 0, o->text_start);
	relocs(&rel_text, o, o->text_start, o->cnt);
	add_sec(secs, &nr, "", SHT_NULL, 0, NULL, 0, 0);
	s_strtab = add_sec(secs, &nr, ".strtab", SHT_STRTAB, 0, NULL, 0, 1);	/* filled last */
	s_prog = add_sec(secs, &nr, PROG_SEC, SHT_PROGBITS, SHF_ALLOC | SHF_EXECINSTR, o->insn,
			 o->text_start * isz, 8);
	if (text)
		s_text = add_sec(secs, &nr, TEXT_SEC, SHT_PROGBITS, SHF_ALLOC | SHF_EXECINSTR,
				 o->insn + o->text_start, (o->cnt - o->text_start) * isz, 8);
	s_license = add_sec(secs, &nr, "license", SHT_PROGBITS, SHF_ALLOC | SHF_WRITE, license,
			    sizeof(license), 1);
	s_maps = o->nr_used ? add_sec(secs, &nr, ".maps", SHT_PROGBITS, SHF_ALLOC | SHF_WRITE,
				      NULL, (size_t)o->nr_used * MAP_DEF_SIZE, 8) : 0;
	add_sec(secs, &nr, ".BTF", SHT_PROGBITS, 0, btf_raw, btf_size, 4);
	add_sec(secs, &nr, ".BTF.ext", SHT_PROGBITS, 0, ext->p, ext->len, 4);
	s_symtab = add_sec(secs, &nr, ".symtab", SHT_SYMTAB, 0, NULL, 0, 8);	/* filled below */
	s_rel = add_sec(secs, &nr, ".rel" PROG_SEC, SHT_REL, 0, rel_prog.p, rel_prog.len, 8);
	s_rel_text = rel_text.len ? add_sec(secs, &nr, ".rel" TEXT_SEC, SHT_REL, 0, rel_text.p,
					    rel_text.len, 8) : 0;

	/* symbols, in the plan's order */
	buf_add(&str, NULL, 1);
	sym(&syms, 0, 0, SHN_UNDEF, 0, 0);
	if (text)
		sym(&syms, 0, ELF64_ST_INFO(STB_LOCAL, STT_SECTION), s_text, 0, 0);
	for (f = 1; text && f < o->nr_funcs; f++) {
		int end = f + 1 < o->nr_funcs ? p->e.subprog_start[f + 1] : o->cnt;
		char name[80];

		bk_subprog_name(p, f, name, sizeof(name));
		sym(&syms, buf_str(&str, name), ELF64_ST_INFO(STB_LOCAL, STT_FUNC), s_text,
		    (p->e.subprog_start[f] - o->text_start) * isz,
		    (end - p->e.subprog_start[f]) * isz);
	}
	sym(&syms, buf_str(&str, p->func_name), ELF64_ST_INFO(STB_GLOBAL, STT_FUNC), s_prog, 0,
	    o->text_start * isz);
	for (slot = 1; slot <= (int)o->nr_used; slot++)
		for (m = 0; m < nr_maps; m++)
			if (o->map_slot[m] == slot)
				sym(&syms, buf_str(&str, maps[m].name),
				    ELF64_ST_INFO(STB_GLOBAL, STT_OBJECT), s_maps,
				    (slot - 1) * MAP_DEF_SIZE, MAP_DEF_SIZE);
	sym(&syms, buf_str(&str, "LICENSE"), ELF64_ST_INFO(STB_GLOBAL, STT_OBJECT), s_license, 0,
	    sizeof(license));
	secs[s_symtab].data = syms.p;
	secs[s_symtab].sh.sh_size = syms.len;
	secs[s_symtab].sh.sh_link = s_strtab;
	secs[s_symtab].sh.sh_info = o->sym_prog;	/* the first global */
	secs[s_symtab].sh.sh_entsize = sizeof(Elf64_Sym);
	secs[s_rel].sh.sh_link = s_symtab;
	secs[s_rel].sh.sh_info = s_prog;
	secs[s_rel].sh.sh_entsize = sizeof(Elf64_Rel);
	if (s_rel_text) {
		secs[s_rel_text].sh.sh_link = s_symtab;
		secs[s_rel_text].sh.sh_info = s_text;
		secs[s_rel_text].sh.sh_entsize = sizeof(Elf64_Rel);
	}
	for (f = 1; f < nr; f++)
		secs[f].sh.sh_name = buf_str(&str, secs[f].name);
	secs[s_strtab].data = str.p;
	secs[s_strtab].sh.sh_size = str.len;

	/* the bytes: the ELF header, each section's, the section headers */
	eh.e_shnum = nr;
	eh.e_shstrndx = s_strtab;
	buf_add(out, &eh, sizeof(eh));
	for (f = 1; f < nr; f++) {
		sh[f] = secs[f].sh;
		buf_align(out, secs[f].sh.sh_addralign);
		sh[f].sh_offset = buf_add(out, secs[f].data, secs[f].sh.sh_size);
	}
	buf_align(out, 8);
	shoff = buf_add(out, sh, sizeof(sh[0]) * nr);
	if (!out->err)
		((Elf64_Ehdr *)out->p)->e_shoff = shoff;
	ret = str.err ?: rel_prog.err ?: rel_text.err ?: syms.err ?: out->err;
	free(str.p);
	free(rel_prog.p);
	free(rel_text.p);
	free(syms.p);
	return ret;
}

/*
 * @len bytes to @path, through a temporary file of this process's beside
 * it (never an existing one: O_EXCL), renamed into place: a failed write
 * leaves no partial object.  The mode is 0644 less the umask, as for any
 * file a tool writes.
 */
static int write_file(const char *path, const void *data, size_t len, char *err, size_t err_len)
{
	char tmp[4096];
	FILE *f;
	int fd, ret = 0;

	if (snprintf(tmp, sizeof(tmp), "%s.%d.tmp", path, (int)getpid()) >= (int)sizeof(tmp))
		return fail(err, err_len, -ENAMETOOLONG, "%s: name too long", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0)
		return fail(err, err_len, -errno, "cannot write %s: %s", path, strerror(errno));
	f = fdopen(fd, "wb");
	if (!f) {
		ret = -errno;
		close(fd);
		goto out;
	}
	errno = 0;
	if (fwrite(data, 1, len, f) != len)
		ret = errno ? -errno : -EIO;
	if (fclose(f) && !ret)
		ret = -errno;
	if (!ret && rename(tmp, path))
		ret = -errno;
out:
	if (ret) {
		unlink(tmp);
		return fail(err, err_len, ret, "cannot write %s: %s", path, strerror(-ret));
	}
	return 0;
}

int bk_prog_write_obj(const struct bk_prog *p, const struct bk_obj_map *maps,
		      unsigned nr_maps, const char *path, char *err, size_t err_len)
{
	struct bpf_func_info fi[BK_MAX_SUBPROGS];
	struct bpf_line_info *li = NULL;
	struct obj_plan o = {};
	struct buf ext = {}, out = {};
	struct btf *btf = NULL;
	const void *raw;
	uint32_t raw_size;
	int ret = 0, prog_sec, text_sec;

	if (err && err_len)
		err[0] = 0;
	if (nr_maps > MAX_MAPS)
		return fail(err, err_len, -E2BIG, "%u maps: at most %d", nr_maps, MAX_MAPS);
	li = calloc(p->e.nr_lines + 1, sizeof(*li));
	if (!li) {
		ret = fail(err, err_len, -ENOMEM, "no memory for %d lines", p->e.nr_lines);
		goto out;
	}
	ret = plan_obj(p, maps, nr_maps, &o, err, err_len);
	if (ret)
		goto out;
	btf = bk_prog_btf(p, fi, li, &ret);
	if (!btf) {
		fail(err, err_len, ret, "building the BTF failed: %s", strerror(-ret));
		goto out;
	}
	btf_add_maps(btf, maps, nr_maps, &o, &ret);
	prog_sec = bk_btf_ok(btf__add_str(btf, PROG_SEC), &ret);
	text_sec = bk_btf_ok(btf__add_str(btf, TEXT_SEC), &ret);
	raw = ret ? NULL : btf__raw_data(btf, &raw_size);
	if (!raw) {
		ret = ret ?: -ENOMEM;
		fail(err, err_len, ret, "building the BTF failed: %s", strerror(-ret));
		goto out;
	}
	btf_ext(&ext, &o, prog_sec, text_sec, fi, li, p->e.nr_lines);
	ret = ext.err ?: build(p, maps, nr_maps, &o, raw, raw_size, &ext, &out);
	if (ret) {
		fail(err, err_len, ret, "building the object failed: %s", strerror(-ret));
		goto out;
	}
	ret = write_file(path, out.p, out.len, err, err_len);
out:
	btf__free(btf);
	free(o.insn);
	free(o.rel_sym);
	free(li);
	free(ext.p);
	free(out.p);
	return ret;
}
