/* http.h - every HTTP request the daemon makes goes through here (libcurl).
 *
 * One request function with the project's policies built in: TLS
 * verification always on (plus an optional extra CA file), plain http only to
 * loopback hosts, no redirects, connect/total/low-speed timeouts, a cap on
 * the response size, prompt abort when the daemon is stopping, and one
 * classifier that turns a status code or transport error into a retry
 * decision. Secrets travel only as `struct secbuf` and never reach a log or
 * curl's verbose output (which is never switched on). */
#ifndef STBQ_HTTP_H
#define STBQ_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "secbuf.h"
#include "util.h"

#define HTTP_CONNECT_TIMEOUT_S 10
#define HTTP_LOW_SPEED_BYTES   1  /* abort if slower than this ...     */
#define HTTP_LOW_SPEED_TIME_S  30 /* ... for this long                 */
#define HTTP_SECRET_REPLY_MAX                                                                      \
	(128u                                                                                      \
	 << 10) /* a token or secret reply (Secret Manager payloads reach 64 KiB, 88 KB in base64); sized at once */
#define HTTP_LOOPBACK_HOSTS     "localhost,127.0.0.0/8,::1" /* never proxied */
#define HTTP_BACKOFF_BASE_MS    1000                        /* first retry waits about 1 s       */
#define HTTP_BACKOFF_CAP_MS     59000                       /* each wait capped below 60 s       */
#define HTTP_BACKOFF_JITTER_MS  1000                        /* plus 0..1 s of jitter             */
#define HTTP_RETRY_AFTER_MAX_MS 600000 /* a Retry-After over 10 min is clamped */
#define HTTP_MAX_ERROR_BODY_LOG 200    /* bytes of an error body worth logging */

struct http_client;

struct http_options {
	const char *ca_file;       /* extra CA bundle, NULL or "" for the system store */
	long timeout_s;            /* default total time per request */
	size_t max_response_bytes; /* default response cap */
	const char *user_agent;    /* NULL: "seetickets-bq/VERSION" */
	/* Polled during transfers and waits: nonzero aborts with -ECANCELED.
	 * The event loop passes a function that checks for SIGTERM/SIGINT. */
	int (*cancelled)(void *userdata);
	void *cancel_userdata;
};

struct http_request {
	const char *method; /* "GET", "POST", "PUT", "DELETE" */
	const char *url;
	const char *body; /* NULL for none */
	size_t body_len;
	const char *content_type;    /* with a body: e.g. "application/json" */
	const char *const *headers;  /* NULL-terminated "Name: value" list, never secret */
	const struct secbuf *bearer; /* if set: "Authorization: Bearer <secret>" */
	long timeout_s;              /* 0: the client's default */
	size_t max_response_bytes;   /* 0: the client's default */
	/* Allow plain http:// to any host. Only for the GCE metadata server
	 * (metadata.google.internal, 169.254.169.254), which speaks nothing
	 * else and never leaves the VM; never set it for a configured URL. */
	bool plain_http;
	/* Never through a proxy: the metadata server's token would travel in
	 * clear through it (and a proxy could forge one). */
	bool no_proxy;
	/* The reply holds a secret (a token, a key): its buffer is sized once at
	 * max_response_bytes (keep that small, HTTP_SECRET_REPLY_MAX) so that no
	 * realloc leaves an unwiped copy behind; it is wiped when freed. */
	bool secret_reply;
};

struct http_response {
	long status;         /* HTTP status, 0 when no response arrived */
	struct buf body;     /* the body, NUL-terminated */
	long retry_after_ms; /* from Retry-After (seconds or HTTP-date), -1 if absent */
	int error;           /* 0, or the transport error as a negative errno code:
				 -ETIMEDOUT, -ECONNREFUSED, -ECONNRESET, -EHOSTUNREACH,
				 -EPROTO (truncated/garbled), -EFBIG (over the size cap),
				 -ECANCELED (stopping), -EACCES (TLS verification failed),
				 -EPERM (URL refused by policy), -ENOMEM */
	char errmsg[256];    /* human-readable transport error, scrubbed */
	char *headers;       /* raw response header block of the final response */
};

enum http_verdict {
	HTTP_VERDICT_OK,        /* 2xx */
	HTTP_VERDICT_RETRY,     /* transient: back off and try again */
	HTTP_VERDICT_AUTH,      /* 401: refresh credentials once, then retry */
	HTTP_VERDICT_FATAL,     /* permanent for this request: do not retry */
	HTTP_VERDICT_CANCELLED, /* the daemon is stopping */
};

/* How long to keep trying one request. */
struct http_policy {
	int max_attempts; /* total tries including the first, >= 1 */
	long budget_ms;   /* stop retrying once this much time has gone by (0: no limit) */
};

struct http_client *http_client_new(const struct http_options *o); /* NULL on failure */
void http_client_free(struct http_client *c);                      /* accepts NULL */

/* One attempt. Returns 0 when an HTTP response (any status) was received,
 * otherwise the negative transport error (also stored in resp->error).
 * `resp` must be zeroed or reset with http_response_reset() before use. */
int http_perform(struct http_client *c, const struct http_request *req, struct http_response *resp);

/* Attempts with backoff while the verdict is RETRY. The verdict of each
 * response comes from http_classify(status, error, reason_fn(resp)) where
 * reason_fn (may be NULL) extracts an API error reason from the body.
 * Returns 0 when the last response was 2xx; -EAGAIN when retries ran out on a
 * transient error; -EKEYREJECTED on 401 (caller refreshes and calls again);
 * -ECANCELED when stopping; another negative code for a permanent failure
 * (-EACCES for 403, -ENOENT for 404, -EEXIST for 409, -EINVAL for other 4xx,
 * or the transport error). `resp` always holds the last response. */
typedef const char *(*http_reason_fn)(const struct http_response *resp, char *buf, size_t len);
int http_send(struct http_client *c, const struct http_request *req, struct http_response *resp,
              const struct http_policy *policy, http_reason_fn reason_fn);

/* The one classifier. `error` is resp->error, `reason` an API error reason
 * ("rateLimitExceeded", "backendError", ...) or NULL. */
enum http_verdict http_classify(long status, int error, const char *reason);

/* Wait before retry number `attempt` (0 = first retry): 2^attempt seconds
 * plus jitter, capped; or the server's Retry-After when given. Pure. */
long http_backoff_ms(int attempt, long retry_after_ms);
/* Sleep that returns -ECANCELED early if the cancel callback fires. */
int http_sleep_ms(struct http_client *c, long ms);

/* Parse a Retry-After value: delta-seconds or an IMF-fixdate/RFC 850/asctime
 * HTTP-date relative to `now`. 0 and *ms set on success, -EINVAL otherwise.
 * A date in the past gives 0 ms. */
int http_parse_retry_after(const char *value, time_t now, long *ms);

/* Value of a response header (case-insensitive name), copied into buf; NULL if absent. */
const char *http_response_header(const struct http_response *r, const char *name, char *buf,
                                 size_t len);
void http_response_reset(struct http_response *r); /* empty it for reuse, keep nothing */
void http_response_free(struct http_response *r);  /* free what it holds */

/* The first bytes of a body, made safe for a log line (scrubbed, no control
 * characters, truncated to HTTP_MAX_ERROR_BODY_LOG). */
void http_body_excerpt(const struct http_response *r, char *out, size_t len);

void http_global_init(void); /* curl_global_init, once at start-up */
void http_global_cleanup(void);

#endif
