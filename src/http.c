/* http.c - libcurl with the project's policies: TLS always verified, http only to loopback,
 * no redirects, time and size limits, prompt cancellation, and one retry classifier. */
#include "autoconfig.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#include "http.h"
#include "log.h"
#include "secbuf.h"
#include "url.h"
#include "util.h"

#define HTTP_DEFAULT_TIMEOUT_S 30
#define HTTP_DEFAULT_MAX_BYTES (64u * 1024 * 1024)
#define HTTP_MAX_HEADER_BYTES  (256u * 1024) /* one response's header block */
#define HTTP_SLEEP_SLICE_MS    100           /* cancellation latency of a backoff wait */
/* OpenSSL hashed directory of the system store, kept when an extra CA file is given. */
#ifndef HTTP_SYSTEM_CAPATH
#define HTTP_SYSTEM_CAPATH "/etc/ssl/certs"
#endif
#define HTTP_LOG_URL_MAX         256
#define HTTP_EXCERPT_SCRUB_BYTES 4096 /* scrub more than we show: a token cut in half still hides */
#define HTTP_REASON_MAX          64
#define HTTP_DESCRIBE_MAX        (HTTP_MAX_ERROR_BODY_LOG + 512) /* one failure, with advice */

struct http_client {
	CURL *easy; /* reused so its connection cache survives between requests */
	char *ca_file;
	char *user_agent;
	char *no_proxy; /* the operator's no_proxy plus loopback */
	long timeout_s;
	size_t max_response_bytes;
	int (*cancelled)(void *userdata);
	void *cancel_userdata;
	char errbuf[CURL_ERROR_SIZE];
};

/* State of one transfer, shared by the curl callbacks. */
struct xfer {
	struct http_client *c;
	struct http_response *resp;
	struct buf headers;
	size_t cap;
	bool head;
	bool secret;       /* the body holds a secret: one buffer, no realloc */
	long block_status; /* status of the header block being received */
	int abort_reason;  /* why a callback stopped the transfer: -EFBIG, -ECANCELED, -ENOMEM */
	bool header_overflow;
};

static bool client_cancelled(const struct http_client *c)
{
	return c && c->cancelled && c->cancelled(c->cancel_userdata) != 0;
}

void http_global_init(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

void http_global_cleanup(void)
{
	curl_global_cleanup();
}

struct http_client *http_client_new(const struct http_options *o)
{
	struct http_client *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->timeout_s = o && o->timeout_s > 0 ? o->timeout_s : HTTP_DEFAULT_TIMEOUT_S;
	c->max_response_bytes =
	        o && o->max_response_bytes > 0 ? o->max_response_bytes : HTTP_DEFAULT_MAX_BYTES;
	if (o && o->ca_file && o->ca_file[0]) {
		c->ca_file = strdup(o->ca_file);
		if (!c->ca_file)
			goto fail;
	}
	c->user_agent =
	        strdup(o && o->user_agent ? o->user_agent : "seetickets-bq/" PACKAGE_VERSION);
	if (!c->user_agent)
		goto fail;
	if (o) {
		c->cancelled = o->cancelled;
		c->cancel_userdata = o->cancel_userdata;
	}
	/* CURLOPT_NOPROXY replaces the environment's list, so the two are joined. */
	const char *env = getenv("no_proxy");
	if (!env || !*env)
		env = getenv("NO_PROXY");
	if (env && *env ? asprintf(&c->no_proxy, "%s,%s", env, HTTP_LOOPBACK_HOSTS) < 0
	                : !(c->no_proxy = strdup(HTTP_LOOPBACK_HOSTS))) {
		c->no_proxy = NULL;
		goto fail;
	}
	c->easy = curl_easy_init();
	if (!c->easy)
		goto fail;
	return c;
fail:
	http_client_free(c);
	return NULL;
}

void http_client_free(struct http_client *c)
{
	if (!c)
		return;
	if (c->easy)
		curl_easy_cleanup(c->easy);
	free(c->ca_file);
	free(c->user_agent);
	free(c->no_proxy);
	free(c);
}

void http_response_reset(struct http_response *r)
{
	/* Bodies may hold access tokens (token endpoint, Secret Manager). */
	if (r->body.data)
		util_wipe(r->body.data, r->body.cap);
	buf_free(&r->body);
	free(r->headers);
	memset(r, 0, sizeof(*r));
	r->retry_after_ms = -1;
}

void http_response_free(struct http_response *r)
{
	if (r)
		http_response_reset(r);
}

/* ---- pure helpers ---------------------------------------------------------------------- */

enum http_verdict http_classify(long status, int error, const char *reason)
{
	if (error) {
		switch (error) {
		case -ETIMEDOUT:
		case -ECONNREFUSED:
		case -ECONNRESET:
		case -EHOSTUNREACH:
		case -EPROTO:
			return HTTP_VERDICT_RETRY;
		case -ECANCELED:
			return HTTP_VERDICT_CANCELLED;
		default:
			return HTTP_VERDICT_FATAL;
		}
	}
	if (status >= 200 && status <= 299)
		return HTTP_VERDICT_OK;
	if (status == 401)
		return HTTP_VERDICT_AUTH;
	if (status == 403) {
		/* BigQuery answers rate limits with 403: decide on the reason, not the code. */
		if (reason && (strcmp(reason, "rateLimitExceeded") == 0 ||
		               strcmp(reason, "quotaExceeded") == 0 ||
		               strcmp(reason, "userRateLimitExceeded") == 0))
			return HTTP_VERDICT_RETRY;
		return HTTP_VERDICT_FATAL;
	}
	if (status == 408 || status == 429 || (status >= 500 && status <= 599))
		return HTTP_VERDICT_RETRY;
	if (status == 409)
		return HTTP_VERDICT_FATAL;
	if (status >= 400 && status <= 499) {
		if (reason &&
		    (strcmp(reason, "backendError") == 0 || strcmp(reason, "internalError") == 0 ||
		     strcmp(reason, "rateLimitExceeded") == 0))
			return HTTP_VERDICT_RETRY;
		return HTTP_VERDICT_FATAL;
	}
	/* 1xx/3xx as a final answer: a redirect we do not follow, or nonsense. */
	return HTTP_VERDICT_FATAL;
}

long http_backoff_ms(int attempt, long retry_after_ms)
{
	if (retry_after_ms >= 0)
		return retry_after_ms < HTTP_RETRY_AFTER_MAX_MS ? retry_after_ms
		                                                : HTTP_RETRY_AFTER_MAX_MS;
	/* Doubling stops at the cap, so no attempt number can overflow. */
	long wait = HTTP_BACKOFF_BASE_MS;
	for (int i = 0; i < attempt && wait < HTTP_BACKOFF_CAP_MS; i++)
		wait *= 2;
	if (wait > HTTP_BACKOFF_CAP_MS)
		wait = HTTP_BACKOFF_CAP_MS;
	return wait + (long)(util_random_u32() % HTTP_BACKOFF_JITTER_MS);
}

int http_sleep_ms(struct http_client *c, long ms)
{
	uint64_t end = util_now_ms() + (uint64_t)(ms > 0 ? ms : 0);
	for (;;) {
		if (client_cancelled(c))
			return -ECANCELED;
		uint64_t now = util_now_ms();
		if (now >= end)
			return 0;
		uint64_t slice = end - now < HTTP_SLEEP_SLICE_MS ? end - now : HTTP_SLEEP_SLICE_MS;
		struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)(slice * 1000000u)};
		/* EINTR (the stop signal) just ends the slice early; the loop rechecks. */
		nanosleep(&ts, NULL);
	}
}

static const char *const month_names[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                          "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
static const char *const day_short[] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
static const char *const day_long[] = {"Monday", "Tuesday",  "Wednesday", "Thursday",
                                       "Friday", "Saturday", "Sunday"};

/* Match one of `names` exactly (case-sensitive, as RFC 9110 requires) at *p. */
static int match_name(const char **p, const char *const *names, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		size_t l = strlen(names[i]);
		if (strncmp(*p, names[i], l) == 0 && !isalpha((unsigned char)(*p)[l])) {
			*p += l;
			return (int)i;
		}
	}
	return -1;
}

/* Exactly `n` decimal digits. */
static bool match_digits(const char **p, int n, int *out)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if (!isdigit((unsigned char)(*p)[i]))
			return false;
		v = v * 10 + ((*p)[i] - '0');
	}
	*p += n;
	*out = v;
	return true;
}

static bool match_char(const char **p, char ch)
{
	if (**p != ch)
		return false;
	(*p)++;
	return true;
}

static bool match_time(const char **p, struct tm *tm)
{
	return match_digits(p, 2, &tm->tm_hour) && match_char(p, ':') &&
	       match_digits(p, 2, &tm->tm_min) && match_char(p, ':') &&
	       match_digits(p, 2, &tm->tm_sec);
}

/* IMF-fixdate "Sun, 06 Nov 1994 08:49:37 GMT", RFC 850 "Sunday, 06-Nov-94 08:49:37 GMT"
 * or asctime "Sun Nov  6 08:49:37 1994", all UTC. */
static int parse_http_date(const char *s, time_t now, time_t *out)
{
	struct tm tm = {0};
	const char *p = s;
	int year = 0, mon;

	if (match_name(&p, day_short, UTIL_ARRAY_SIZE(day_short)) >= 0) {
		if (match_char(&p, ',')) {
			if (!match_char(&p, ' ') || !match_digits(&p, 2, &tm.tm_mday) ||
			    !match_char(&p, ' ') || (mon = match_name(&p, month_names, 12)) < 0 ||
			    !match_char(&p, ' ') || !match_digits(&p, 4, &year) ||
			    !match_char(&p, ' ') || !match_time(&p, &tm) || strcmp(p, " GMT") != 0)
				return -EINVAL;
		} else {
			if (!match_char(&p, ' ') || (mon = match_name(&p, month_names, 12)) < 0 ||
			    !match_char(&p, ' '))
				return -EINVAL;
			/* asctime pads a one-digit day with a space. */
			if (*p == ' ') {
				p++;
				if (!match_digits(&p, 1, &tm.tm_mday))
					return -EINVAL;
			} else if (!match_digits(&p, 2, &tm.tm_mday)) {
				return -EINVAL;
			}
			if (!match_char(&p, ' ') || !match_time(&p, &tm) || !match_char(&p, ' ') ||
			    !match_digits(&p, 4, &year) || *p)
				return -EINVAL;
		}
	} else if (match_name(&p, day_long, UTIL_ARRAY_SIZE(day_long)) >= 0) {
		int yy;
		if (!match_char(&p, ',') || !match_char(&p, ' ') ||
		    !match_digits(&p, 2, &tm.tm_mday) || !match_char(&p, '-') ||
		    (mon = match_name(&p, month_names, 12)) < 0 || !match_char(&p, '-') ||
		    !match_digits(&p, 2, &yy) || !match_char(&p, ' ') || !match_time(&p, &tm) ||
		    strcmp(p, " GMT") != 0)
			return -EINVAL;
		/* RFC 9110 5.6.7: a two-digit year more than 50 years ahead is in the past. */
		struct tm nowtm;
		gmtime_r(&now, &nowtm);
		int now_year = nowtm.tm_year + 1900;
		year = now_year - now_year % 100 + yy;
		if (year > now_year + 50)
			year -= 100;
	} else {
		return -EINVAL;
	}
	if (tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 ||
	    tm.tm_sec > 60 || year < 1900)
		return -EINVAL;
	tm.tm_mon = mon;
	tm.tm_year = year - 1900;
	time_t t = timegm(&tm);
	if (t == (time_t)-1)
		return -EINVAL;
	*out = t;
	return 0;
}

int http_parse_retry_after(const char *value, time_t now, long *ms)
{
	if (!value)
		return -EINVAL;
	while (*value == ' ' || *value == '\t')
		value++;
	size_t n = strlen(value);
	while (n > 0 && (value[n - 1] == ' ' || value[n - 1] == '\t'))
		n--;
	if (n == 0 || n > 64)
		return -EINVAL;
	char v[65];
	memcpy(v, value, n);
	v[n] = '\0';

	if (isdigit((unsigned char)v[0])) {
		long long secs = 0;
		for (const char *p = v; *p; p++) {
			if (!isdigit((unsigned char)*p))
				return -EINVAL;
			/* Saturate: anything this large gets clamped by the caller anyway. */
			if (secs < LONG_MAX / 1000)
				secs = secs * 10 + (*p - '0');
		}
		*ms = secs >= LONG_MAX / 1000 ? LONG_MAX : (long)secs * 1000;
		return 0;
	}
	time_t t;
	if (parse_http_date(v, now, &t) < 0)
		return -EINVAL;
	if (t <= now) {
		*ms = 0;
		return 0;
	}
	int64_t d = (int64_t)t - (int64_t)now;
	*ms = d >= LONG_MAX / 1000 ? LONG_MAX : (long)d * 1000;
	return 0;
}

const char *http_response_header(const struct http_response *r, const char *name, char *buf,
                                 size_t len)
{
	if (!r || !r->headers || !name || !buf || len == 0)
		return NULL;
	size_t nl = strlen(name);
	for (const char *line = r->headers; *line;) {
		const char *end = strchr(line, '\n');
		size_t ll = end ? (size_t)(end - line) : strlen(line);
		if (ll > nl && line[nl] == ':' && strncasecmp(line, name, nl) == 0) {
			const char *v = line + nl + 1;
			const char *ve = line + ll;
			while (v < ve && (*v == ' ' || *v == '\t'))
				v++;
			while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'))
				ve--;
			size_t vl = (size_t)(ve - v);
			if (vl >= len)
				vl = len - 1;
			memcpy(buf, v, vl);
			buf[vl] = '\0';
			return buf;
		}
		if (!end)
			break;
		line = end + 1;
	}
	return NULL;
}

void http_body_excerpt(const struct http_response *r, char *out, size_t len)
{
	if (!out || len == 0)
		return;
	out[0] = '\0';
	if (!r || !r->body.data || r->body.len == 0)
		return;
	char tmp[HTTP_EXCERPT_SCRUB_BYTES + 1];
	size_t n = r->body.len < HTTP_EXCERPT_SCRUB_BYTES ? r->body.len : HTTP_EXCERPT_SCRUB_BYTES;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)r->body.data[i];
		/* Only printable ASCII survives: no line breaks, escapes or NULs in a log line. */
		tmp[i] = ch == '\t' || ch == '\n' || ch == '\r' ? ' '
		         : ch >= 0x20 && ch < 0x7f              ? (char)ch
		                                                : '?';
	}
	tmp[n] = '\0';
	/* Scrub before truncating, so a token cut at the edge is still recognised. */
	log_scrub(tmp);
	size_t keep = n < HTTP_MAX_ERROR_BODY_LOG ? n : HTTP_MAX_ERROR_BODY_LOG;
	if (keep > len - 1)
		keep = len - 1;
	memcpy(out, tmp, keep);
	out[keep] = '\0';
	util_wipe(tmp, n);
}

/* ---- one transfer ---------------------------------------------------------------------- */

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
	struct xfer *x = ud;
	size_t n = size * nmemb;
	struct buf *b = &x->resp->body;
	if (n > x->cap - b->len) {
		x->abort_reason = -EFBIG;
		return 0;
	}
	if (x->secret && !b->data && buf_reserve(b, x->cap + 1) < 0) {
		x->abort_reason = -ENOMEM;
		return 0;
	}
	if (buf_append(b, data, n) < 0) {
		x->abort_reason = -ENOMEM;
		return 0;
	}
	return n;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *ud)
{
	struct xfer *x = ud;
	size_t n = size * nmemb;

	/* Each status line starts a new block (1xx and proxy answers come first);
	 * only the final response's block is kept. */
	if (n >= 5 && memcmp(data, "HTTP/", 5) == 0) {
		buf_reset(&x->headers);
		x->block_status = 0;
		const char *sp = memchr(data, ' ', n);
		if (sp && (size_t)(sp - data) + 4 <= n && isdigit((unsigned char)sp[1]) &&
		    isdigit((unsigned char)sp[2]) && isdigit((unsigned char)sp[3]))
			x->block_status = (sp[1] - '0') * 100 + (sp[2] - '0') * 10 + (sp[3] - '0');
	}
	if (x->headers.len + n > HTTP_MAX_HEADER_BYTES) {
		x->abort_reason = -EFBIG;
		x->header_overflow = true;
		return 0;
	}
	if (buf_append(&x->headers, data, n) < 0) {
		x->abort_reason = -ENOMEM;
		return 0;
	}

	/* A declared body over the cap is refused before any of it arrives. */
	static const char cl[] = "content-length:";
	if (!x->head && x->block_status >= 200 && n > sizeof(cl) - 1 &&
	    strncasecmp(data, cl, sizeof(cl) - 1) == 0) {
		char num[32];
		size_t l = n - (sizeof(cl) - 1);
		if (l >= sizeof(num))
			l = sizeof(num) - 1;
		memcpy(num, data + sizeof(cl) - 1, l);
		num[l] = '\0';
		char *end;
		errno = 0;
		unsigned long long v = strtoull(num, &end, 10);
		if (end != num && (errno == ERANGE || v > x->cap)) {
			x->abort_reason = -EFBIG;
			return 0;
		}
	}
	return n;
}

static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
	struct xfer *x = ud;
	(void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
	if (client_cancelled(x->c)) {
		x->abort_reason = -ECANCELED;
		return 1;
	}
	return 0;
}

static int map_curl_error(CURLcode rc)
{
	switch (rc) {
	case CURLE_OK:
		return 0;
	case CURLE_OPERATION_TIMEDOUT:
		return -ETIMEDOUT;
	case CURLE_COULDNT_CONNECT:
		return -ECONNREFUSED;
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_SSL_CONNECT_ERROR: /* handshake cut short: transient like a reset */
		return -ECONNRESET;
	case CURLE_PARTIAL_FILE:
	case CURLE_WEIRD_SERVER_REPLY:
	case CURLE_BAD_CONTENT_ENCODING:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
		return -EPROTO;
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_INVALIDCERTSTATUS:
	case CURLE_SSL_CRL_BADFILE:
		return -EACCES;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
		return -EHOSTUNREACH;
	case CURLE_FILESIZE_EXCEEDED:
		return -EFBIG;
	case CURLE_ABORTED_BY_CALLBACK:
		return -ECANCELED;
	case CURLE_OUT_OF_MEMORY:
		return -ENOMEM;
	case CURLE_UNSUPPORTED_PROTOCOL:
		return -EPERM;
	case CURLE_URL_MALFORMAT:
	case CURLE_BAD_FUNCTION_ARGUMENT:
		return -EINVAL;
	default:
		return -EIO;
	}
}

/* The URL for a log line: no userinfo, query or fragment. */
static void url_for_log(const char *url, char *out, size_t len)
{
	const char *p = url ? url : "";
	const char *scheme_end = strstr(p, "://");
	size_t o = 0;
	if (scheme_end) {
		const char *host = scheme_end + 3;
		size_t authority = strcspn(host, "/?#");
		const char *at = memchr(host, '@', authority);
		size_t pre = (size_t)(host - p);
		if (pre > len - 1)
			pre = len - 1;
		memcpy(out, p, pre);
		o = pre;
		p = at ? at + 1 : host;
	}
	size_t n = strcspn(p, "?#");
	if (n > len - 1 - o)
		n = len - 1 - o;
	memcpy(out + o, p, n);
	out[o + n] = '\0';
}

static void set_errmsg(struct http_response *resp, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));
static void set_errmsg(struct http_response *resp, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(resp->errmsg, sizeof(resp->errmsg), fmt, ap);
	va_end(ap);
	log_scrub(resp->errmsg);
}

#define SETOPT(opt, val)                                                                           \
	do {                                                                                       \
		if (curl_easy_setopt(c->easy, opt, val) != CURLE_OK) {                             \
			set_errmsg(resp, "libcurl refused option %s", #opt);                       \
			r = -ENOTSUP;                                                              \
			goto out;                                                                  \
		}                                                                                  \
	} while (0)

static int slist_add(struct curl_slist **l, const char *s)
{
	struct curl_slist *n = curl_slist_append(*l, s);
	if (!n)
		return -ENOMEM;
	*l = n;
	return 0;
}

/* curl copies header strings; the copy of the Authorization line is wiped before it is freed. */
static void slist_free_wiped(struct curl_slist *l)
{
	for (struct curl_slist *i = l; i; i = i->next)
		if (i->data && strncasecmp(i->data, "Authorization:", 14) == 0)
			util_wipe(i->data, strlen(i->data));
	curl_slist_free_all(l);
}

int http_perform(struct http_client *c, const struct http_request *req, struct http_response *resp)
{
	struct xfer x = {.c = c, .resp = resp};
	struct curl_slist *hdrs = NULL;
	char *auth = NULL;
	char logurl[HTTP_LOG_URL_MAX];
	const char *method = req->method ? req->method : "GET";
	uint64_t t0 = util_now_ms();
	CURLcode rc = CURLE_OK;
	int r = 0;

	http_response_reset(resp);
	url_for_log(req->url, logurl, sizeof(logurl));

	if (!req->url || !(url_allowed(req->url) ||
	                   (req->plain_http && util_str_has_prefix(req->url, "http://")))) {
		r = -EPERM;
		set_errmsg(resp, "URL refused by policy: https only, plain http only to loopback");
		goto out;
	}
	if (client_cancelled(c)) {
		r = -ECANCELED;
		set_errmsg(resp, "request cancelled");
		goto out;
	}

	x.cap = req->max_response_bytes ? req->max_response_bytes : c->max_response_bytes;
	x.secret = req->secret_reply;
	if (x.secret && x.cap > HTTP_SECRET_REPLY_MAX)
		x.cap = HTTP_SECRET_REPLY_MAX;
	x.head = strcmp(method, "HEAD") == 0;

	/* Reset drops every option of the last request but keeps its connections. */
	curl_easy_reset(c->easy);
	c->errbuf[0] = '\0';
	SETOPT(CURLOPT_ERRORBUFFER, c->errbuf);
	SETOPT(CURLOPT_URL, req->url);
	SETOPT(CURLOPT_PROTOCOLS_STR, "http,https");
	SETOPT(CURLOPT_REDIR_PROTOCOLS_STR, "https");
	SETOPT(CURLOPT_FOLLOWLOCATION, 0L);
	SETOPT(CURLOPT_NOSIGNAL, 1L);
	SETOPT(CURLOPT_SSL_VERIFYPEER, 1L);
	SETOPT(CURLOPT_SSL_VERIFYHOST, 2L);
	if (c->ca_file) {
		/* With OpenSSL both are loaded: the extra bundle and the system hashed dir. */
		SETOPT(CURLOPT_CAINFO, c->ca_file);
		SETOPT(CURLOPT_CAPATH, HTTP_SYSTEM_CAPATH);
	}
	/* A proxy from the environment may serve the Google APIs, never
	 * loopback; the operator's no_proxy keeps its meaning. */
	SETOPT(CURLOPT_NOPROXY, c->no_proxy);
	if (req->no_proxy)
		SETOPT(CURLOPT_PROXY, "");
	SETOPT(CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
	SETOPT(CURLOPT_CONNECTTIMEOUT, (long)HTTP_CONNECT_TIMEOUT_S);
	SETOPT(CURLOPT_TIMEOUT, req->timeout_s > 0 ? req->timeout_s : c->timeout_s);
	SETOPT(CURLOPT_LOW_SPEED_LIMIT, (long)HTTP_LOW_SPEED_BYTES);
	SETOPT(CURLOPT_LOW_SPEED_TIME, (long)HTTP_LOW_SPEED_TIME_S);
	SETOPT(CURLOPT_ACCEPT_ENCODING, "");
	SETOPT(CURLOPT_USERAGENT, c->user_agent);
	SETOPT(CURLOPT_WRITEFUNCTION, on_body);
	SETOPT(CURLOPT_WRITEDATA, &x);
	SETOPT(CURLOPT_HEADERFUNCTION, on_header);
	SETOPT(CURLOPT_HEADERDATA, &x);
	SETOPT(CURLOPT_XFERINFOFUNCTION, on_progress);
	SETOPT(CURLOPT_XFERINFODATA, &x);
	SETOPT(CURLOPT_NOPROGRESS, 0L);

	if (strcmp(method, "GET") == 0 && !req->body) {
		SETOPT(CURLOPT_HTTPGET, 1L);
	} else if (x.head) {
		SETOPT(CURLOPT_NOBODY, 1L);
	} else if (req->body || strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 ||
	           strcmp(method, "PATCH") == 0) {
		/* POSTFIELDS sends Content-Length, also 0 for an empty PUT/POST. */
		SETOPT(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(req->body ? req->body_len : 0));
		SETOPT(CURLOPT_POSTFIELDS, req->body ? req->body : "");
		if (strcmp(method, "POST") != 0)
			SETOPT(CURLOPT_CUSTOMREQUEST, method);
	} else {
		SETOPT(CURLOPT_CUSTOMREQUEST, method);
	}

	/* An empty "Expect:" stops curl waiting for 100-continue on large bodies. */
	if (slist_add(&hdrs, "Expect:") < 0)
		goto nomem;
	if (req->body && req->content_type) {
		char ct[256];
		snprintf(ct, sizeof(ct), "Content-Type: %s", req->content_type);
		if (slist_add(&hdrs, ct) < 0)
			goto nomem;
	}
	for (const char *const *h = req->headers; h && *h; h++)
		if (slist_add(&hdrs, *h) < 0)
			goto nomem;
	if (req->bearer) {
		auth = secbuf_header(req->bearer, "Authorization", "Bearer ");
		if (!auth || slist_add(&hdrs, auth) < 0)
			goto nomem;
	}
	SETOPT(CURLOPT_HTTPHEADER, hdrs);

	rc = curl_easy_perform(c->easy);
	curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &resp->status);

	if (x.abort_reason) {
		r = x.abort_reason;
		if (r == -EFBIG && x.header_overflow)
			set_errmsg(resp, "response headers larger than %u bytes",
			           HTTP_MAX_HEADER_BYTES);
		else if (r == -EFBIG)
			set_errmsg(resp, "response larger than %zu bytes", x.cap);
		else if (r == -ECANCELED)
			set_errmsg(resp, "request cancelled");
		else
			set_errmsg(resp, "out of memory");
	} else if (rc != CURLE_OK) {
		r = map_curl_error(rc);
		if (rc == CURLE_FILESIZE_EXCEEDED)
			set_errmsg(resp, "response larger than %zu bytes", x.cap);
		else
			set_errmsg(resp, "%s", c->errbuf[0] ? c->errbuf : curl_easy_strerror(rc));
	}
	goto out;

nomem:
	r = -ENOMEM;
	set_errmsg(resp, "out of memory");
out:
	/* The handle keeps pointers to these until the next reset. */
	if (c && c->easy)
		curl_easy_setopt(c->easy, CURLOPT_HTTPHEADER, NULL);
	slist_free_wiped(hdrs);
	secbuf_header_free(auth);

	if (x.headers.data)
		resp->headers = buf_steal(&x.headers);
	buf_free(&x.headers);
	if (!resp->body.data && buf_append(&resp->body, "", 0) < 0 && r == 0) {
		r = -ENOMEM;
		set_errmsg(resp, "out of memory");
	}
	char ra[64];
	long ms;
	if (http_response_header(resp, "Retry-After", ra, sizeof(ra)) &&
	    http_parse_retry_after(ra, time(NULL), &ms) == 0)
		resp->retry_after_ms = ms;
	resp->error = r;

	uint64_t took = util_now_ms() - t0;
	char st[16];
	snprintf(st, sizeof(st), "%ld", resp->status);
	struct log_field f[] = {{"HTTP_METHOD", method}, {"HTTP_STATUS", st}};
	if (r == 0)
		log_write(LOG_DEBUG, f, UTIL_ARRAY_SIZE(f),
		          "http: %s %s -> %ld, %zu bytes in %" PRIu64 " ms", method, logurl,
		          resp->status, resp->body.len, took);
	else
		log_write(LOG_DEBUG, f, UTIL_ARRAY_SIZE(f),
		          "http: %s %s -> %s (%s) after %" PRIu64 " ms", method, logurl,
		          strerror(-r), resp->errmsg, took);
	return r;
}

/* ---- attempts with backoff ------------------------------------------------------------- */

static int fatal_code(const struct http_response *r)
{
	if (r->error)
		return r->error;
	switch (r->status) {
	case 403:
		return -EACCES;
	case 404:
		return -ENOENT;
	case 409:
		return -EEXIST;
	default:
		return r->status >= 400 && r->status <= 499 ? -EINVAL : -EPROTO;
	}
}

/* "status 503 (reason): excerpt" or "Connection timed out (curl message)". The transport
 * failures an operator has to act on (TLS, DNS, a refused connection) name the host and
 * what to check: under a sandboxed unit a bare "Permission denied" reads as a file or
 * sandbox problem. */
static void describe_failure(const struct http_response *r, const char *url, const char *reason,
                             char *out, size_t len)
{
	if (r->error) {
		char host[256];
		if (url_host(url, host, sizeof(host)) < 0)
			snprintf(host, sizeof(host), "the server");
		switch (r->error) {
		case -EACCES:
			snprintf(out, len,
			         "TLS verification of %s failed (%s); if a TLS-intercepting proxy "
			         "is "
			         "in the way, add its CA certificate with ca_file; check ca_file, "
			         "the "
			         "proxy settings and the system clock",
			         host, r->errmsg);
			return;
		case -EHOSTUNREACH:
			snprintf(
			        out, len,
			        "cannot resolve %s (%s); check the host name in the configuration, "
			        "the system's DNS resolver and the proxy settings",
			        host, r->errmsg);
			return;
		case -ECONNREFUSED:
			snprintf(out, len,
			         "cannot connect to %s (%s); check the host and port in the "
			         "configuration, the proxy settings and the firewall (and the "
			         "unit's "
			         "IPAddressAllow=)",
			         host, r->errmsg);
			return;
		default:
			snprintf(out, len, "%s (%s)", strerror(-r->error), r->errmsg);
			return;
		}
	}
	char ex[HTTP_MAX_ERROR_BODY_LOG + 1];
	http_body_excerpt(r, ex, sizeof(ex));
	snprintf(out, len, "status %ld%s%s%s: %s", r->status, reason ? " (" : "",
	         reason ? reason : "", reason ? ")" : "", ex);
}

int http_send(struct http_client *c, const struct http_request *req, struct http_response *resp,
              const struct http_policy *policy, http_reason_fn reason_fn)
{
	int max = policy && policy->max_attempts > 1 ? policy->max_attempts : 1;
	long budget = policy && policy->budget_ms > 0 ? policy->budget_ms : 0;
	const char *method = req->method ? req->method : "GET";
	uint64_t t0 = util_now_ms();
	char logurl[HTTP_LOG_URL_MAX];
	url_for_log(req->url, logurl, sizeof(logurl));

	for (int attempt = 1;; attempt++) {
		http_perform(c, req, resp);

		char rbuf[HTTP_REASON_MAX];
		const char *reason = NULL;
		if (reason_fn && !resp->error && resp->status >= 300) {
			rbuf[0] = '\0';
			reason = reason_fn(resp, rbuf, sizeof(rbuf));
		}
		switch (http_classify(resp->status, resp->error, reason)) {
		case HTTP_VERDICT_OK:
			return 0;
		case HTTP_VERDICT_AUTH:
			return -EKEYREJECTED;
		case HTTP_VERDICT_CANCELLED:
			return -ECANCELED;
		case HTTP_VERDICT_FATAL:
			if (resp->error == -EACCES) {
				/* Retrying cannot help, and the caller only sees EACCES. */
				char what[HTTP_DESCRIBE_MAX];
				describe_failure(resp, req->url, NULL, what, sizeof(what));
				log_warning("http: %s %s: %s", method, logurl, what);
			}
			return fatal_code(resp);
		case HTTP_VERDICT_RETRY:
			break;
		}

		char what[HTTP_DESCRIBE_MAX];
		describe_failure(resp, req->url, reason, what, sizeof(what));
		if (attempt >= max) {
			log_warning("http: %s %s: %s, attempt %d/%d, no retries left", method,
			            logurl, what, attempt, max);
			return -EAGAIN;
		}
		long wait = http_backoff_ms(attempt - 1, resp->retry_after_ms);
		uint64_t elapsed = util_now_ms() - t0;
		if (budget && elapsed + (uint64_t)wait > (uint64_t)budget) {
			log_warning(
			        "http: %s %s: %s, attempt %d/%d, next wait of %ld ms would pass "
			        "the %ld ms budget",
			        method, logurl, what, attempt, max, wait, budget);
			return -EAGAIN;
		}
		/* One retry is routine; persistent trouble deserves a warning. */
		log_write(attempt == 1 ? LOG_INFO : LOG_WARNING, NULL, 0,
		          "http: %s %s: %s, attempt %d/%d, retrying in %ld ms", method, logurl,
		          what, attempt, max, wait);
		if (http_sleep_ms(c, wait) < 0)
			return -ECANCELED;
	}
}
