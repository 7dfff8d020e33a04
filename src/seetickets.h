/* seetickets.h - the See Tickets clients API: events (GET) and sales (POST),
 * paged by offset until an empty page. */
#ifndef STBQ_SEETICKETS_H
#define STBQ_SEETICKETS_H

#include <jansson.h>
#include <stddef.h>

#include "http.h"
#include "secbuf.h"
#include "stpage.h"

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

/* Called with each page (borrowed, valid during the call): its rows, and
 * the elements that were not even valid JSON. Return nonzero to stop paging
 * (that value is returned). */
typedef int (*st_page_fn)(const struct st_page *page, void *userdata);

/* GET {base}/events/search?offset=O&limit=L until an empty page. */
int st_fetch_events(struct st_client *c, st_page_fn fn, void *userdata);

/* POST {base}/reports/sales for these codes (one request body), paged until
 * an empty page. start/end (ISO-8601, may be NULL) add
 * filteredBy.salesStartDate/salesEndDate. The caller cuts the codes into
 * chunks: what a chunk covers is its business (checkpoints per code).
 * `known` (may be NULL): rows whose uniqueCode it holds are only counted
 * (page->nknown), never read (stpage.h). */
int st_fetch_sales(struct st_client *c, const char *const *codes, size_t ncodes, const char *start,
                   const char *end, const struct st_known *known, st_page_fn fn, void *userdata);

/* Returns of both fetches: 0 done, every page read up to an empty one;
 * -ERANGE paging was cut short because the server ignored offset (the same
 * first row came back twice) or the page guard tripped - rows so far were
 * delivered, the rest were not, so the poll must not count as complete;
 * -EKEYREJECTED the key was refused (401/403); -EAGAIN transient failure
 * after retries; -EBADMSG malformed answers after retries; -ECANCELED
 * stopping; other negative errno, or what fn returned. */

#endif
