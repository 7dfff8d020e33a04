/* gapi.h - one authenticated Google API call, and reading Google's error bodies. */
#ifndef STBQ_GAPI_H
#define STBQ_GAPI_H

#include <stddef.h>

#include "gauth.h"
#include "http.h"

#define GAPI_MAX_MESSAGE 300 /* characters of an error message worth a log line */

/* Extract error.errors[0].reason (BigQuery) or error.status (google.rpc.Status) or the OAuth "error"
 * string from a JSON error body; NULL if none. An http_reason_fn. */
const char *gapi_error_reason(const struct http_response *resp, char *buf, size_t len);
/* The human message of an error body (error.message, or an OAuth error_description),
 * scrubbed, without control characters and truncated; else the transport error or
 * the status line. Always writes a NUL-terminated string. */
void gapi_error_message(const struct http_response *resp, char *buf, size_t len);
/* Send req with "Authorization: Bearer <token>" from g; on 401 invalidate the token, fetch a new one
 * and retry ONCE. Returns http_send's codes, or gauth_token's when no token could be had (then
 * nothing was sent). req->bearer is restored before returning. */
int gapi_call(struct gauth *g, struct http_client *http, struct http_request *req,
              struct http_response *resp, const struct http_policy *policy);

/* Bracket the parsing and freeing of JSON that holds secrets (key files, token replies, secret
 * payloads): in between, every block jansson frees is wiped first, since its parser copies
 * strings through buffers it grows and frees. Single-threaded; pairs may nest. */
void gapi_json_secret_begin(void);
void gapi_json_secret_end(void);

#endif
