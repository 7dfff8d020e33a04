/* fuzz_seetickets.c - libFuzzer target for the See Tickets reply parser: whatever the API (or a
 * proxy in front of it) sends as a page must give rows or -EBADMSG, and every row must then be
 * coerced or refused by both schemas, never crash, leak or read out of bounds. It also holds the
 * fast path (the structural scan that skips rows with a known key unread) against jansson: with
 * a filter that knows nothing it must give exactly jansson's page, and with one that knows some
 * keys, exactly that page without the rows of those keys. See README.md. */
#include "autoconfig.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "jscan.h"
#include "log.h"
#include "schema.h"
#include "seetickets.h"
#include "stpage.h"

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

/* The filter: "knows" keys of even length, and lists the ones it knew. */
struct asked {
	json_t *known; /* array of the keys it said were known, in order */
	bool none;     /* know nothing */
};

static bool knows(const char *key, size_t len, void *ud)
{
	struct asked *a = ud;
	if (a->none || len % 2)
		return false;
	INVARIANT(json_array_append_new(a->known, json_stringn(key, len)) == 0);
	return true;
}

static bool same_first(const struct st_page *a, const struct st_page *b)
{
	return (!a->first && !b->first) || (a->first && b->first && !strcmp(a->first, b->first));
}

static void knows_many(const struct st_span *keys, size_t n, bool *out, void *ud)
{
	for (size_t i = 0; i < n; i++)
		out[i] = keys[i].text && knows(keys[i].text, keys[i].len, ud);
}

/* leave_unread: the same page as the filter reading rows itself (`filtered`): the same
 * rows known and counted, and the rows left unread, each read by st_read_row(), are in
 * order its rows and its bad rows. */
static void leave_unread_matches(const uint8_t *data, size_t size, const struct st_page *filtered,
                                 bool many)
{
	struct asked a = {.known = json_array()};
	struct st_known leave = {.known = knows,
	                         .userdata = &a,
	                         .leave_unread = true,
	                         .known_many = many ? knows_many : NULL};
	struct st_page pg;
	INVARIANT(a.known);
	INVARIANT(st_parse_page((const char *)data, size, "sales", "uniqueCode", &leave, &pg) == 0);
	INVARIANT(pg.count == filtered->count && pg.nknown == filtered->nknown);
	INVARIANT(same_first(&pg, filtered));
	if (memchr(data, '\0', size)) {
		/* A reply with a NUL byte is read whole by jansson, filter or not. */
		INVARIANT(pg.nunread == 0 && pg.nbad == filtered->nbad);
		INVARIANT(json_equal(pg.rows, filtered->rows));
		st_page_clear(&pg);
		json_decref(a.known);
		return;
	}
	INVARIANT(pg.nbad == 0 && json_array_size(pg.rows) == 0);
	INVARIANT(pg.nunread + pg.nknown == pg.count);
	size_t rows = 0, bad = 0;
	for (size_t i = 0; i < pg.nunread; i++) {
		json_t *row;
		struct st_bad_row b;
		int r = st_read_row(pg.unread[i].text, pg.unread[i].len, &row, &b);
		INVARIANT(r == 0 || r == 1);
		if (r == 0) {
			INVARIANT(json_equal(row, json_array_get(filtered->rows, rows)));
			rows++;
			json_decref(row);
		} else {
			INVARIANT(bad < filtered->nbad &&
			          !strcmp(b.text, filtered->bad[bad].text) &&
			          !strcmp(b.why, filtered->bad[bad].why));
			bad++;
			free(b.text);
		}
	}
	INVARIANT(rows == json_array_size(filtered->rows) && bad == filtered->nbad);
	st_page_clear(&pg);
	json_decref(a.known);
}

/* The fast path against jansson's page `ref`. */
static void differential(const uint8_t *data, size_t size, int ref_err, const struct st_page *ref)
{
	struct asked a = {.known = json_array(), .none = true};
	struct st_known filter = {.known = knows, .userdata = &a};
	struct st_page pg;
	INVARIANT(a.known);

	/* Knowing nothing: the very same page. */
	int err = st_parse_page((const char *)data, size, "sales", "uniqueCode", &filter, &pg);
	INVARIANT(err == ref_err);
	if (err == 0) {
		INVARIANT(pg.count == ref->count && pg.nbad == ref->nbad && pg.nknown == 0);
		INVARIANT(json_equal(pg.rows, ref->rows) || json_array_size(pg.rows) == 0);
		INVARIANT(json_array_size(pg.rows) == json_array_size(ref->rows));
		INVARIANT(same_first(&pg, ref));
		for (size_t b = 0; b < pg.nbad; b++)
			INVARIANT(!strcmp(pg.bad[b].text, ref->bad[b].text) &&
			          pg.bad[b].index == ref->bad[b].index);
		st_page_clear(&pg);
	}

	/* Knowing some keys: the same page without their rows, which are counted. */
	a.none = false;
	err = st_parse_page((const char *)data, size, "sales", "uniqueCode", &filter, &pg);
	INVARIANT(err == ref_err);
	if (err == 0) {
		/* A row jansson cannot read is skipped too when its key is known
		 * (it is in BigQuery already), so `first` may then differ. */
		INVARIANT(pg.count == ref->count && (ref->nbad || same_first(&pg, ref)));
		INVARIANT(pg.nbad <= ref->nbad && pg.nknown == json_array_size(a.known));
		INVARIANT(json_array_size(pg.rows) + pg.nbad + pg.nknown == pg.count);
		if (ref->nbad == 0 && pg.nbad == 0) {
			size_t j = 0, k = 0, i;
			json_t *row;
			json_array_foreach(ref->rows, i, row)
			{
				if (j < json_array_size(pg.rows) &&
				    json_equal(row, json_array_get(pg.rows, j))) {
					j++;
					continue;
				}
				/* Skipped: its key is the next one the filter knew. */
				const json_t *key = json_object_get(row, "uniqueCode");
				INVARIANT(k < json_array_size(a.known));
				INVARIANT(json_equal(key, json_array_get(a.known, k)));
				k++;
			}
			INVARIANT(j == json_array_size(pg.rows) && k == pg.nknown);
		}
		leave_unread_matches(data, size, &pg, false);
		leave_unread_matches(data, size, &pg, true);
		st_page_clear(&pg);
	} else if (size < ST_MAX_PAGE_VALUES) { /* fewer values than bytes: never too many */
		struct st_known leave = {.known = knows, .userdata = &a, .leave_unread = true};
		INVARIANT(st_parse_page((const char *)data, size, "sales", "uniqueCode", &leave,
		                        &pg) == err);
	}
	json_decref(a.known);
}

/* The drain's shortcut (jscan.h): a line the validator vouches for is one jansson reads as an
 * object, and the key read off it is the one jansson reads. */
static void spool_line(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data, *k;
	size_t kl;
	bool valid = jscan_valid_object(text, size);
	json_t *obj = json_loadb(text, size, 0, NULL);
	if (valid)
		INVARIANT(json_is_object(obj));
	if (obj && jscan_plain_member(text, size, "uniqueCode", &k, &kl)) {
		const json_t *v = json_object_get(obj, "uniqueCode");
		INVARIANT(json_is_string(v) && json_string_length(v) == kl &&
		          memcmp(json_string_value(v), k, kl) == 0);
	}
	json_decref(obj);
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
	spool_line(data, size);
	struct st_page pg;
	err = st_parse_page((const char *)data, size, "sales", "uniqueCode", NULL, &pg);
	differential(data, size, err, &pg);
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
