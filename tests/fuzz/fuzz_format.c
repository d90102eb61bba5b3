// SPDX-License-Identifier: GPL-2.0
/*
 * The format text parser and the validator, then planning, generating
 * both program shapes and the listing for every format that validates.
 * Input: text, or 'B' and 56 raw format bytes.
 */
#include <stdio.h>
#include <string.h>

#include "bkey.h"
#include "gen.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct bk_prog p;
	static FILE *null;
	struct bkey_format f;
	struct bkey_format_err err;
	char text[512], msg[300];
	int i;

	if (!null)
		null = fopen("/dev/null", "w");
	if (size == 57 && data[0] == 'B') {
		memcpy(&f, data + 1, sizeof(f));
	} else {
		if (size >= sizeof(text))
			return 0;
		memcpy(text, data, size);
		text[size] = 0;
		if (bkey_format_parse(text, &f, msg, sizeof(msg)))
			return 0;
		bkey_format_to_str(&f, text, sizeof(text));
	}
	if (bkey_format_validate(&f, &err)) {
		bkey_format_err_str(&err, msg, sizeof(msg));
		return 0;
	}
	for (i = 0; i < 3; i++) {
		struct bk_gen_opts o = {
			.shape = i == 2 ? BK_SHAPE_BPF_LOOP : BK_SHAPE_MAY_GOTO,
			.walk = i == 1 ? BK_WALK_TABLE : BK_WALK_U64S,
			.chunk = 1 + f.key_u64s % 4, .annotate = true, .strict_align = i == 2,
			.ctl_fd = 1, .in_fd = 2, .out_fd = 3,
		};

		if (bk_gen_unpack(&f, &o, &p, NULL))
			__builtin_trap();	/* a valid format must generate */
		bk_listing(&p.e, null, NULL, 0);
	}
	{
		struct bk_search_opts so = { .node_size = 4096, .lookup = f.key_u64s & 1,
					     .ctl_fd = 1, .nodes_fd = 2, .progs_fd = 3 };

		if (bk_gen_search(&f, &so, &p, NULL))
			__builtin_trap();
		bk_listing(&p.e, null, NULL, 0);
	}
	return 0;
}
