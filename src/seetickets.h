/* seetickets.h - the See Tickets clients API: events (GET) and sales (POST),
 * paged by offset until an empty page. */
#ifndef STBQ_SEETICKETS_H
#define STBQ_SEETICKETS_H

#include <jansson.h>
#include <stddef.h>

#include "http.h"
#include "secbuf.h"

#define ST_MAX_PAGES_PER_POLL 100000 /* guard against a server that never sends an empty page */
#define ST_MALFORMED_RETRIES  3      /* malformed JSON answers retried before the poll fails */

struct st_client;

struct st_options {
	const char *base_url;             /* "https://clients-api.seetickets.com/v1" */
	struct http_client *http;         /* borrowed */
	const struct http_policy *policy; /* borrowed */
	int page_size;                    /* `limit`; 0 sends none */
	long timeout_s;
	size_t max_response_bytes;
};

struct st_client *st_client_new(const struct st_options *o); /* NULL on ENOMEM */
void st_client_free(struct st_client *c);
void st_client_set_key(struct st_client *c,
                       const struct secbuf *key); /* borrowed; may change on reload */

/* Called with each page's `data` array (borrowed, valid during the call).
 * Return nonzero to stop paging (that value is returned). */
typedef int (*st_page_fn)(json_t *rows, void *userdata);

/* GET {base}/events/search?offset=O&limit=L until an empty page. */
int st_fetch_events(struct st_client *c, st_page_fn fn, void *userdata);

/* POST {base}/reports/sales for each chunk of `codes_per_request` codes, each
 * paged until an empty page. start/end (ISO-8601, may be NULL) add
 * filteredBy.salesStartDate/salesEndDate. */
int st_fetch_sales(struct st_client *c, const char *const *codes, size_t ncodes,
                   size_t codes_per_request, const char *start, const char *end, st_page_fn fn,
                   void *userdata);

/* The rows of one reply body (a new reference to its "data" array; an empty
 * array when "data" is absent or null), or NULL with *err = -EBADMSG for
 * anything else. `what` names the feed in the warning. For tests and fuzzing. */
json_t *st_parse_page(const char *body, size_t len, const char *what, int *err);

/* Returns of both fetches: 0 done (also when paging had to stop early because
 * the server ignored offset - the same first key came back twice - or the
 * page guard tripped: logged as a warning, rows so far were delivered);
 * -EKEYREJECTED the key was refused (401/403); -EAGAIN transient failure
 * after retries; -EBADMSG malformed answers after retries; -ECANCELED
 * stopping; other negative errno. */

#endif
