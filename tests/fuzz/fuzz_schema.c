/* fuzz_schema.c - libFuzzer target for schema.c: any bytes a server might send as a row must be
 * coerced or refused, never crash, leak or read out of bounds. See README.md for the builds. */
#include "autoconfig.h"

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "feed-internal.h"
#include "log.h"
#include "schema.h"
#include "util.h"

#define FUZZ_MAX_DEPTH 16 /* jansson itself caps nesting; this only bounds our walk */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void coerce_both(const json_t *row)
{
	static const struct schema *const schemas[] = {&schema_sales, &schema_events};
	char why[128];

	for (size_t i = 0; i < 2; i++) {
		json_t *out = NULL;
		int r = schema_coerce(schemas[i], row, &out, why, sizeof(why));
		if (r == 0) {
			/* A coerced row is what goes to BigQuery: it must have a usable key and
			 * every column, and serialise. */
			const char *key = schema_row_key(schemas[i], out);
			if (!key || !*key || strlen(key) > SCHEMA_MAX_KEY_LEN ||
			    json_object_size(out) != schemas[i]->ncolumns)
				abort();
			char *text = json_dumps(out, JSON_COMPACT);
			if (!text)
				abort();
			free(text);
		} else if (out || !memchr(why, '\0', sizeof(why))) {
			abort();
		}
		json_decref(out);
		/* The same value as a table schema from tables.get. */
		schema_check_table(schemas[i], row, why, sizeof(why));
	}
}

/* Every string anywhere in the document is tried as a time. */
static void parse_times(const json_t *v, int depth)
{
	int64_t t;
	size_t i;
	const char *k;
	json_t *e;

	if (depth > FUZZ_MAX_DEPTH)
		return;
	switch (json_typeof(v)) {
	case JSON_STRING:
		schema_parse_time(json_string_value(v), &t);
		break;
	case JSON_ARRAY:
		json_array_foreach((json_t *)v, i, e) parse_times(e, depth + 1);
		break;
	case JSON_OBJECT:
		json_object_foreach((json_t *)v, k, e)
		{
			schema_parse_time(k, &t);
			parse_times(e, depth + 1);
		}
		break;
	default:
		break;
	}
}

/* The text path against the tree path: whenever schema_coerce_text() vouches for a row, jansson
 * must read the same bytes as a row that schema_coerce() accepts, and its dump must be the same
 * bytes, with the same key. When it does not vouch, it must have written nothing. */
static void text_matches_tree(const char *data, size_t size)
{
	static const struct schema *const schemas[] = {&schema_sales, &schema_events};
	/* The text path stands aside at debug level (schema.c notes unknown fields there). */
	log_set_level(LOG_INFO);
	for (size_t i = 0; i < 2; i++) {
		struct buf out = {0};
		const char *key = NULL;
		size_t klen = 0;
		if (buf_append(&out, "x", 1) < 0)
			abort();
		int r = schema_coerce_text(schemas[i], data, size, &out, &key, &klen);
		if (r < 0 || (r == 0 && out.len != 1)) {
			if (r != -ENOMEM)
				abort();
			buf_free(&out);
			continue;
		}
		if (r == 1) {
			json_t *api = json_loadb(data, size, JSON_DECODE_ANY, NULL), *bq = NULL;
			if (!api || schema_coerce(schemas[i], api, &bq, NULL, 0) != 0)
				abort();
			char *dump = json_dumps(bq, JSON_COMPACT);
			const char *k = schema_row_key(schemas[i], bq);
			if (!dump || strlen(dump) != out.len - 1 ||
			    memcmp(dump, out.data + 1, out.len - 1) || !k || strlen(k) != klen ||
			    memcmp(k, key, klen) || key < data || key + klen > data + size)
				abort();
			free(dump);
			json_decref(bq);
			json_decref(api);
		}
		buf_free(&out);
	}
	log_set_level(LOG_DEBUG);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	json_error_t err;
	int64_t t;

	if (!ready) {
		/* Debug level so that the unknown-field notes are formatted too. */
		log_set_sink(log_sink_discard, NULL);
		log_set_level(LOG_DEBUG);
		ready = 1;
	}

	/* The raw bytes as a time string. */
	char *text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	schema_parse_time(text, &t);
	free(text);

	/* A _fingerprint as BigQuery hands it back: only its own 16 lowercase hex
	 * digits parse, and they print back the same. */
	uint64_t fp = schema_fingerprint_parse((const char *)data, size);
	if (fp) {
		char hex[17];
		snprintf(hex, sizeof(hex), "%016" PRIx64, fp);
		if (size != 16 || memcmp(hex, data, 16) != 0)
			abort();
	}
	/* An _observed_at as the spool holds it: what parses is a real time,
	 * and the change id made from it names the key it was given. */
	int64_t us;
	char id[KEYSET_MAX_KEY_LEN + 1];
	if (feed_observed_parse((const char *)data, size, &us) == 0) {
		/* Only the daemon's own form: digits where it writes digits. */
		for (size_t i = 0; i < size; i++)
			if (data[i] < ' ' || data[i] > 'Z')
				abort();
		char prefix[64];
		int n = snprintf(prefix, sizeof(prefix), "%016x:%" PRId64 ":", 1, us);
		if (size != 27 || feed_change_id((const char *)data, size, 1, us, id) != 0 ||
		    memcmp(id, prefix, (size_t)n) != 0 || memcmp(id + n, data, size) != 0)
			abort();
	}
	/* The fingerprint of a row's text is never 0 ("none known"). */
	if (schema_fingerprint((const char *)data, size) == 0)
		abort();

	text_matches_tree((const char *)data, size);
	json_t *doc = json_loadb((const char *)data, size, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
	if (!doc)
		return 0;
	coerce_both(doc);
	/* A page: {"data":[rows]} or a bare array of rows. */
	json_t *rows = json_is_object(doc) ? json_object_get(doc, "data") : doc;
	if (json_is_array(rows)) {
		size_t i;
		json_t *row;
		json_array_foreach(rows, i, row) coerce_both(row);
	}
	parse_times(doc, 0);
	json_decref(doc);
	return 0;
}
