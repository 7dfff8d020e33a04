/* fuzz_http.c - libFuzzer target for what http.c reads out of a response: the Retry-After value
 * (seconds or any of the three HTTP-date forms), header lookup in the raw header block, and the
 * log excerpt of a body. Any bytes a server sends must parse or be refused, never crash, leak or
 * read out of bounds. See README.md for the builds. */
#include "autoconfig.h"

#include <ctype.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "http.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define INVARIANT(cond)                                                                            \
	do {                                                                                       \
		if (!(cond))                                                                       \
			abort();                                                                   \
	} while (0)

/* Fixed clocks, so that a finding replays: today-ish, and one where two-digit RFC 850 years
 * wrap into the next century. */
static const time_t nows[] = {1764547200 /* 2025-12-01 */, 4070908800 /* 2099-01-01 */};

static void retry_after(const char *value)
{
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(nows); i++) {
		long ms = -12345;
		int r = http_parse_retry_after(value, nows[i], &ms);
		if (r < 0) {
			INVARIANT(ms == -12345);
			continue;
		}
		INVARIANT(r == 0 && ms >= 0 && (ms % 1000 == 0 || ms == LONG_MAX));
		/* Delta-seconds are plain arithmetic: check the short ones exactly. */
		const char *p = value + strspn(value, " \t");
		size_t n = strspn(p, "0123456789");
		if (n > 0 && n <= 12 && p[n + strspn(p + n, " \t")] == '\0')
			INVARIANT(ms == strtol(p, NULL, 10) * 1000);
		/* The wait the retry loop takes from it stays within its clamp. */
		long wait = http_backoff_ms(0, ms);
		INVARIANT(wait >= 0 && wait <= HTTP_RETRY_AFTER_MAX_MS);
	}
}

static void header_lookup(const struct http_response *r, const char *name)
{
	static const size_t lens[] = {1, 8, 64, 512};
	char buf[512];

	for (size_t i = 0; i < UTIL_ARRAY_SIZE(lens); i++) {
		memset(buf, 'x', sizeof(buf));
		const char *v = http_response_header(r, name, buf, lens[i]);
		if (!v)
			continue;
		INVARIANT(v == buf && memchr(buf, '\0', lens[i]));
		if (lens[i] == 64 && strcasecmp(name, "Retry-After") == 0)
			retry_after(buf); /* as http_perform does, with its 64-byte buffer */
	}
}

/* The first line "Name: value" must be found under its own name, whatever case it is asked in. */
static void first_line_found(const struct http_response *r)
{
	const char *h = r->headers;
	size_t ll = strcspn(h, "\n");
	const char *colon = memchr(h, ':', ll);
	if (!colon || colon == h || (size_t)(colon - h) >= 64)
		return;
	char name[64], buf[512];
	size_t nl = (size_t)(colon - h);
	for (size_t i = 0; i < nl; i++)
		name[i] = (char)toupper((unsigned char)h[i]);
	name[nl] = '\0';
	const char *v = http_response_header(r, name, buf, sizeof(buf));
	INVARIANT(v == buf);
	/* The value is what follows the colon, without surrounding blanks. */
	const char *s = colon + 1, *e = h + ll;
	while (s < e && (*s == ' ' || *s == '\t'))
		s++;
	while (e > s && (e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t'))
		e--;
	size_t vl = (size_t)(e - s) < sizeof(buf) - 1 ? (size_t)(e - s) : sizeof(buf) - 1;
	INVARIANT(strlen(buf) == vl && memcmp(buf, s, vl) == 0);
}

static void excerpt(const struct http_response *r)
{
	static const size_t lens[] = {1, 2, 50, HTTP_MAX_ERROR_BODY_LOG + 1, 1024};
	char out[1024];

	for (size_t i = 0; i < UTIL_ARRAY_SIZE(lens); i++) {
		memset(out, 'x', sizeof(out));
		http_body_excerpt(r, out, lens[i]);
		size_t n = strnlen(out, lens[i]);
		INVARIANT(n < lens[i] && n <= HTTP_MAX_ERROR_BODY_LOG && n <= r->body.len);
		/* One log line: printable ASCII only. */
		for (size_t j = 0; j < n; j++)
			INVARIANT(out[j] >= 0x20 && out[j] < 0x7f);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const names[] = {
	        "Retry-After",    "content-type", "Content-Length", "Metadata-Flavor", "",
	        "HTTP/1.1 200 OK"};
	struct http_response r = {0};

	http_response_reset(&r);
	r.headers = malloc(size + 1);
	if (!r.headers || buf_append(&r.body, data, size) < 0) {
		http_response_free(&r);
		return 0;
	}
	memcpy(r.headers, data, size);
	r.headers[size] = '\0';

	retry_after(r.headers);
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(names); i++)
		header_lookup(&r, names[i]);
	first_line_found(&r);
	excerpt(&r);
	http_response_free(&r);
	return 0;
}
