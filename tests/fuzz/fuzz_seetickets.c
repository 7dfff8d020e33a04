/* fuzz_seetickets.c - libFuzzer target for the See Tickets reply parser: whatever the API (or a
 * proxy in front of it) sends as a page must give rows or -EBADMSG, and every row must then be
 * coerced or refused by both schemas, never crash, leak or read out of bounds. See README.md. */
#include "autoconfig.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "log.h"
#include "schema.h"
#include "seetickets.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define INVARIANT(cond)                                                                            \
	do {                                                                                       \
		if (!(cond))                                                                       \
			abort();                                                                   \
	} while (0)

static void coerce(const struct schema *s, const json_t *row)
{
	char why[128];
	json_t *out = NULL;

	memset(why, 'x', sizeof(why));
	int r = schema_coerce(s, row, &out, why, sizeof(why));
	if (r == 0) {
		/* What goes to the spool and then BigQuery: every column, a usable key. */
		const char *key = schema_row_key(s, out);
		INVARIANT(out && json_is_object(out) && json_object_size(out) == s->ncolumns);
		INVARIANT(key && *key && strlen(key) <= SCHEMA_MAX_KEY_LEN);
		char *text = json_dumps(out, JSON_COMPACT);
		INVARIANT(text);
		free(text);
	} else {
		INVARIANT(r < 0 && !out && memchr(why, '\0', sizeof(why)));
	}
	json_decref(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	int err = 1;

	if (!ready) {
		/* Debug level so that every note the parsers make is formatted too. */
		log_set_sink(log_sink_discard, NULL);
		log_set_level(LOG_DEBUG);
		ready = 1;
	}
	struct st_page pg;
	err = st_parse_page((const char *)data, size, "sales", "uniqueCode", &pg);
	if (err) {
		INVARIANT(err == -EBADMSG && !pg.rows && pg.count == 0);
		return 0;
	}
	INVARIANT(json_is_array(pg.rows));
	INVARIANT(json_array_size(pg.rows) + pg.nbad == pg.count);
	for (size_t b = 0; b < pg.nbad; b++) {
		/* Handed over as valid UTF-8, so it can go into a dead letter. */
		json_t *t = json_string(pg.bad[b].text);
		INVARIANT(t != NULL);
		json_decref(t);
		INVARIANT(b == 0 || pg.bad[b].index > pg.bad[b - 1].index);
	}
	size_t i;
	json_t *row;
	json_array_foreach(pg.rows, i, row)
	{
		coerce(&schema_sales, row);
		coerce(&schema_events, row);
	}
	st_page_clear(&pg);
	return 0;
}
