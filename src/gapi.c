/* gapi.c - authenticated Google calls and their error envelopes. */
#include "autoconfig.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <malloc.h>

#include "gapi.h"
#include "log.h"
#include "util.h"

static json_t *parse_body(const struct http_response *resp)
{
	if (!resp || !resp->body.data || resp->body.len == 0)
		return NULL;
	json_t *root = json_loadb(resp->body.data, resp->body.len, 0, NULL);
	if (root && !json_is_object(root)) {
		json_decref(root);
		return NULL;
	}
	return root;
}

static const char *copy_out(const char *s, char *buf, size_t len)
{
	if (!s || !*s || !buf || len == 0)
		return NULL;
	snprintf(buf, len, "%s", s);
	return buf;
}

const char *gapi_error_reason(const struct http_response *resp, char *buf, size_t len)
{
	const char *found = NULL;
	json_t *root = parse_body(resp);
	json_t *err = json_object_get(root, "error");

	if (json_is_object(err)) {
		json_t *first = json_array_get(json_object_get(err, "errors"), 0);
		json_t *reason = json_object_get(first, "reason");
		json_t *status = json_object_get(err, "status");
		if (json_is_string(reason))
			found = copy_out(json_string_value(reason), buf, len);
		if (!found && json_is_string(status))
			found = copy_out(json_string_value(status), buf, len);
	} else if (json_is_string(err)) {
		found = copy_out(json_string_value(err), buf, len);
	}
	json_decref(root);
	return found;
}

/* Scrubbed before it is cut (log_scrub_copy), then cut to GAPI_MAX_MESSAGE
 * with an ellipsis. */
static void safe_copy(const char *text, char *buf, size_t len)
{
	char tmp[GAPI_MAX_MESSAGE + 4];
	log_scrub_copy(text, tmp, sizeof(tmp));
	log_mask_quoted(tmp); /* Google may quote the value it refused */
	size_t max = len - 1 < GAPI_MAX_MESSAGE ? len - 1 : GAPI_MAX_MESSAGE;
	if (strlen(tmp) > max && max >= 3)
		snprintf(buf, len, "%.*s...", (int)(max - 3), tmp);
	else
		snprintf(buf, len, "%.*s", (int)max, tmp);
}

void gapi_error_message(const struct http_response *resp, char *buf, size_t len)
{
	if (!buf || len == 0)
		return;
	buf[0] = '\0';
	if (!resp)
		return;
	json_t *root = parse_body(resp);
	json_t *err = json_object_get(root, "error");
	json_t *msg = json_is_object(err) ? json_object_get(err, "message") : NULL;
	json_t *desc = json_object_get(root, "error_description");

	if (json_is_string(msg) && json_string_length(msg) > 0) {
		safe_copy(json_string_value(msg), buf, len);
	} else if (json_is_string(err) && json_is_string(desc)) {
		char *both = NULL;
		if (asprintf(&both, "%s: %s", json_string_value(err), json_string_value(desc)) >=
		    0) {
			safe_copy(both, buf, len);
			free(both);
		}
	} else if (json_is_string(err)) {
		safe_copy(json_string_value(err), buf, len);
	} else if (resp->status == 0) {
		safe_copy(resp->errmsg[0] ? resp->errmsg : "no response", buf, len);
	} else if (resp->headers && util_str_has_prefix(resp->headers, "HTTP/")) {
		/* No usable body (an HTML page from a proxy, say): the status line. */
		char line[128];
		snprintf(line, sizeof(line), "%.*s", (int)strcspn(resp->headers, "\r\n"),
		         resp->headers);
		safe_copy(line, buf, len);
	} else {
		snprintf(buf, len, "HTTP %ld", resp->status);
	}
	json_decref(root);
}

int gapi_call(struct gauth *g, struct http_client *http, struct http_request *req,
              struct http_response *resp, const struct http_policy *policy)
{
	const struct secbuf *saved = req->bearer, *token = NULL;
	int r = gauth_token(g, &token);
	if (r < 0)
		return r;
	req->bearer = token;
	r = http_send(http, req, resp, policy, gapi_error_reason);
	if (r == -EKEYREJECTED) {
		/* Revoked or expired early: one new token, one more try. A second
		 * 401 is the caller's to report. */
		log_info("%s: access token rejected (HTTP 401), fetching a new one",
		         gauth_describe(g));
		gauth_invalidate(g);
		req->bearer = NULL;
		r = gauth_token(g, &token);
		if (r == 0) {
			req->bearer = token;
			r = http_send(http, req, resp, policy, gapi_error_reason);
		}
	}
	req->bearer = saved;
	return r;
}

static int secret_depth;
static json_malloc_t saved_malloc;
static json_free_t saved_free;

static void wiping_free(void *p)
{
	if (!p)
		return;
	util_wipe(p, malloc_usable_size(p));
	free(p);
}

void gapi_json_secret_begin(void)
{
	if (secret_depth++ == 0) {
		json_get_alloc_funcs(&saved_malloc, &saved_free);
		/* Blocks allocated before the switch are plain malloc blocks too, so
		 * freeing them through wiping_free() is sound; with someone else's
		 * allocator in place that would not hold, so leave it alone. */
		if (saved_malloc == malloc && saved_free == free)
			json_set_alloc_funcs(malloc, wiping_free);
	}
}

void gapi_json_secret_end(void)
{
	if (secret_depth > 0 && --secret_depth == 0)
		json_set_alloc_funcs(saved_malloc, saved_free);
}
