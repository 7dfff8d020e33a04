/* stpage.h - one See Tickets reply body read into rows, where one bad row
 * costs only itself.
 *
 * jansson reads a whole reply at once, and one value it cannot hold (an
 * integer beyond int64, 1e999, a lone \ud83c escape, invalid UTF-8) fails
 * the whole page, every time it is fetched again. So when jansson refuses a
 * reply, a structural scan finds the elements of its top-level "data" array
 * and each is read on its own. A number too large for jansson is read as
 * the string of its digits (an id sent as a number becomes that string; a
 * typed column then takes it or rejects the row as for any string); an
 * element that still cannot be read is handed over as text, for the dead
 * letters. A reply whose structure is broken (truncated, not an object,
 * "data" not an array) is malformed as a whole and fetched again. */
#ifndef STBQ_STPAGE_H
#define STBQ_STPAGE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define ST_BAD_ROW_WHY_LEN 96
/* JSON values one reply may hold. Parsing costs 70 to 200 bytes a value (a
 * page of "{}," takes 80 times its size), so this bounds a reply's memory
 * at a few hundred MB whatever max_response_bytes allows; a real page of
 * sales holds about 40 values a row, so 8 MiB of them stays well below. */
#define ST_MAX_PAGE_VALUES 1000000

/* An element of "data" that is not valid JSON even on its own. */
struct st_bad_row {
	char *text;   /* its raw bytes as valid UTF-8: invalid bytes written as \xNN */
	size_t index; /* position in the page */
	char why[ST_BAD_ROW_WHY_LEN]; /* a fixed text and a byte offset, never input */
};

/* An element left unread for the caller (struct st_known's leave_unread). */
struct st_span {
	const char *text;
	size_t len;
};

struct st_page {
	json_t *rows; /* the elements that could be read, in order (owned) */
	/* With leave_unread: every element that is not known, in order, none of
	 * them read (rows and bad stay empty). The text is the body's: the
	 * caller keeps that alive as long as the page, or hands it to `held`. */
	struct st_span *unread;
	size_t nunread;
	char *held;    /* freed with the page */
	size_t count;  /* elements in "data", read or not: what paging advances by */
	size_t nknown; /* elements skipped unread because their key was known */
	struct st_bad_row *bad;
	size_t nbad;
	char *first; /* the first element's identity (compact JSON of its key, or its
	                  text), for the repeated-page guard; NULL on an empty page */
};

/* Keys the caller already holds. Most rows of a poll are rows it has seen
 * before, and reading one in full (a jansson tree of ~40 values) costs 30
 * times more than finding its key: with a filter, every element is found by
 * the structural scan, and one whose `key` member is a plain string (no
 * escape, no control character: jansson would read it byte for byte) for
 * which known() is true is counted in nknown and not read at all. Anything
 * else is read as without a filter. */
struct st_known {
	bool (*known)(const char *key, size_t len, void *userdata);
	void *userdata;
	/* Leave the other elements unread too, in page->unread: the caller has
	 * a faster reader for what it keeps (schema_coerce_text()), and reads
	 * the rest with st_read_row(), which is what this module would do.
	 * The keys are then looked up once the page is scanned, all at once
	 * with known_many() when it is set (out[i] for keys[i]; a key with a
	 * NULL text is no plain string and must be false), else one by one. */
	bool leave_unread;
	void (*known_many)(const struct st_span *keys, size_t n, bool *out, void *userdata);
};

/* Read a reply body. `key` names the row key (for `first` and the filter).
 * `known` may be NULL. A reply without "data", or with "data": null, is an
 * empty page. 0, -EBADMSG (malformed as a whole; `what` names the feed in
 * the warning, which quotes no input), or -ENOMEM. *page is filled on 0 and
 * empty otherwise; st_page_clear() it. */
int st_parse_page(const char *body, size_t len, const char *what, const char *key,
                  const struct st_known *known, struct st_page *page);
void st_page_clear(struct st_page *page);

/* Read one element of "data" as st_parse_page() reads each: 0 and a new
 * reference in *row, 1 and *bad filled (not JSON even on its own; free
 * bad->text; bad->index is 0), or -ENOMEM. */
int st_read_row(const char *text, size_t len, json_t **row, struct st_bad_row *bad);

/* `len` bytes as valid UTF-8, each byte that is not part of a valid sequence
 * written as "\xNN". A new string; NULL on ENOMEM. */
char *st_utf8_escape(const char *s, size_t len);

#endif
