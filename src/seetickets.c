/* seetickets.c - the See Tickets clients API: both requests and their paging.
 *
 * What is unknown about the API (see the reference notes) decides the
 * shape: rows come in the top-level "data" array; nothing else in a reply
 * is relied on. Paging advances `offset` by the rows received and stops only
 * at an empty page, because a server may return fewer rows than asked for
 * while more remain. A server that ignores `offset` would page forever, so
 * a first key seen twice in a row, or ST_MAX_PAGES_PER_POLL pages, stop the
 * paging with a warning. */
#include "autoconfig.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "seetickets.h"
#include "util.h"

struct st_client {
	char *base_url;
	struct http_client *http;
	const struct http_policy *policy;
	int page_size;
	long timeout_s;
	size_t max_response_bytes;
	const struct secbuf *key;
};

/* One endpoint: how to ask for the page at `offset`. */
struct st_pager {
	const char *what;     /* "events" / "sales" for logs */
	const char *key_name; /* the row key, for the repeated-page guard */
	int (*request)(struct st_client *c, void *ctx, size_t offset, struct http_response *resp);
	void *ctx;
	const struct st_known *known; /* rows to skip unread; NULL reads all */
};

struct st_client *st_client_new(const struct st_options *o)
{
	struct st_client *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->base_url = strdup(o->base_url);
	if (!c->base_url) {
		free(c);
		return NULL;
	}
	/* "https://host/v1/" and "https://host/v1" mean the same. */
	size_t n = strlen(c->base_url);
	while (n > 0 && c->base_url[n - 1] == '/')
		c->base_url[--n] = '\0';
	c->http = o->http;
	c->policy = o->policy;
	c->page_size = o->page_size;
	c->timeout_s = o->timeout_s;
	c->max_response_bytes = o->max_response_bytes;
	return c;
}

void st_client_free(struct st_client *c)
{
	if (!c)
		return;
	free(c->base_url);
	free(c);
}

void st_client_set_key(struct st_client *c, const struct secbuf *key)
{
	c->key = key;
}

static int send(struct st_client *c, const char *method, const char *url, const char *body,
                struct http_response *resp)
{
	static const char *const headers[] = {"Accept: application/json", NULL};
	struct http_request req = {
	        .method = method,
	        .url = url,
	        .body = body,
	        .body_len = body ? strlen(body) : 0,
	        /* The original client sent it on the GET as well; keep the API's habit. */
	        .content_type = "application/json",
	        .headers = headers,
	        .bearer = c->key,
	        .timeout_s = c->timeout_s,
	        .max_response_bytes = c->max_response_bytes,
	};
	if (!c->key)
		return -ENOKEY;
	return http_send(c->http, &req, resp, c->policy, NULL);
}

static int events_request(struct st_client *c, void *ctx, size_t offset, struct http_response *resp)
{
	(void)ctx;
	char *url = NULL;
	int n = c->page_size > 0
	                ? asprintf(&url, "%s/events/search?offset=%zu&limit=%d", c->base_url,
	                           offset, c->page_size)
	                : asprintf(&url, "%s/events/search?offset=%zu", c->base_url, offset);
	if (n < 0)
		return -ENOMEM;
	int r = send(c, "GET", url, NULL, resp);
	free(url);
	return r;
}

struct sales_ctx {
	json_t *body; /* offset replaced per page */
};

static int sales_request(struct st_client *c, void *ctx, size_t offset, struct http_response *resp)
{
	struct sales_ctx *sc = ctx;
	char *url = NULL;
	if (json_object_set_new(sc->body, "offset", json_integer((json_int_t)offset)) < 0)
		return -ENOMEM;
	char *body = json_dumps(sc->body, JSON_COMPACT);
	if (!body || asprintf(&url, "%s/reports/sales", c->base_url) < 0) {
		free(body);
		return -ENOMEM;
	}
	int r = send(c, "POST", url, body, resp);
	free(url);
	free(body);
	return r;
}

/* One page, with malformed replies retried a few times: a truncated or
 * garbled body is usually a passing fault of a proxy or the server. */
static int get_page(struct st_client *c, const struct st_pager *p, size_t offset,
                    struct st_page *page)
{
	struct http_response resp = {0};
	int r;
	for (int attempt = 0;; attempt++) {
		http_response_reset(&resp);
		r = p->request(c, p->ctx, offset, &resp);
		if (r < 0 && (resp.status == 401 || resp.status == 403)) {
			char st[8];
			snprintf(st, sizeof(st), "%ld", resp.status);
			log_error("%s: See Tickets refused the API key (HTTP %s)", p->what,
			          resp.status ? st : "?");
			r = -EKEYREJECTED;
			break;
		}
		if (r < 0)
			break;
		r = st_parse_page(resp.body.data, resp.body.len, p->what, p->key_name, p->known,
		                  page);
		if (r == 0 && page->nunread) {
			/* The unread elements are the body's bytes: the page keeps it. */
			page->held = buf_steal(&resp.body);
			break;
		}
		if (r != -EBADMSG || attempt + 1 >= ST_MALFORMED_RETRIES)
			break;
		r = http_sleep_ms(c->http, http_backoff_ms(attempt, -1));
		if (r < 0)
			break;
	}
	http_response_free(&resp);
	return r;
}

static int page_all(struct st_client *c, const struct st_pager *p, st_page_fn fn, void *ud)
{
	size_t offset = 0;
	char *prev_first = NULL;
	int r = 0;
	for (size_t page = 0;; page++) {
		struct st_page pg;
		if (page >= ST_MAX_PAGES_PER_POLL) {
			log_warning("%s: stopped after %d pages; the server may not honour offset",
			            p->what, ST_MAX_PAGES_PER_POLL);
			r = -ERANGE;
			break;
		}
		r = get_page(c, p, offset, &pg);
		if (r < 0)
			break;
		log_debug("%s: page at offset %zu: %zu rows", p->what, offset, pg.count);
		if (pg.count == 0) {
			st_page_clear(&pg);
			break;
		}
		if (pg.first && prev_first && strcmp(pg.first, prev_first) == 0) {
			log_warning(
			        "%s: the page at offset %zu starts with the same row as the page "
			        "before; the server seems to ignore offset, paging stops here and "
			        "the poll is incomplete",
			        p->what, offset);
			st_page_clear(&pg);
			r = -ERANGE;
			break;
		}
		free(prev_first);
		prev_first = pg.first;
		pg.first = NULL;
		r = fn(&pg, ud);
		offset += pg.count;
		st_page_clear(&pg);
		if (r)
			break;
	}
	free(prev_first);
	return r;
}

int st_fetch_events(struct st_client *c, st_page_fn fn, void *userdata)
{
	struct st_pager p = {.what = "events", .key_name = "id", .request = events_request};
	return page_all(c, &p, fn, userdata);
}

int st_fetch_sales(struct st_client *c, const char *const *codes, size_t ncodes, const char *start,
                   const char *end, const struct st_known *known, st_page_fn fn, void *userdata)
{
	json_t *list = json_array();
	for (size_t i = 0; list && i < ncodes; i++)
		if (json_array_append_new(list, json_string(codes[i])) < 0) {
			json_decref(list);
			list = NULL;
		}
	json_t *body = list ? json_pack("{s:i,s:{s:s,s:o}}", "offset", 0, "search",
	                                "forSearchItemType", "EVENT", "searchItemCodes", list)
	                    : NULL;
	if (!body)
		return -ENOMEM;
	if (c->page_size > 0)
		json_object_set_new(body, "limit", json_integer(c->page_size));
	if (start && end)
		json_object_set_new(
		        body, "filteredBy",
		        json_pack("{s:s,s:s}", "salesStartDate", start, "salesEndDate", end));
	struct sales_ctx sc = {.body = body};
	struct st_pager p = {.what = "sales",
	                     .key_name = "uniqueCode",
	                     .request = sales_request,
	                     .ctx = &sc,
	                     .known = known};
	int r = page_all(c, &p, fn, userdata);
	json_decref(body);
	return r;
}
