/* secbuf.c - secret bytes with a registry of live secrets for log redaction. */
#include "autoconfig.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "secbuf.h"
#include "util.h"

struct secbuf {
	unsigned char *bytes; /* len bytes + NUL, so it can feed C-string APIs */
	size_t len;
	size_t maplen;              /* bytes mapped for them: pages of their own, never in a core */
	struct secbuf *prev, *next; /* registry of live secrets (single-threaded daemon) */
};

static struct secbuf *live_head;

/* Secrets shorter than this are redacted by value only where they stand
 * alone: blanking every "a" in a log line would destroy it without
 * protecting anything. */
#define SECBUF_MIN_REDACT_LEN 6

struct secbuf *secbuf_new(const void *bytes, size_t len)
{
	struct secbuf *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	/* Pages of its own rather than the heap: they can be kept out of core
	 * dumps, and no realloc elsewhere leaves a copy of them behind. */
	long page = sysconf(_SC_PAGESIZE);
	s->maplen = ((len + 1) + (size_t)page - 1) / (size_t)page * (size_t)page;
	void *m = mmap(NULL, s->maplen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED) {
		free(s);
		return NULL;
	}
	(void)madvise(m, s->maplen, MADV_DONTDUMP);
	s->bytes = m;
	if (len)
		memcpy(s->bytes, bytes, len);
	s->bytes[len] = '\0';
	s->len = len;
	s->next = live_head;
	if (live_head)
		live_head->prev = s;
	live_head = s;
	return s;
}

void secbuf_free(struct secbuf *s)
{
	if (!s)
		return;
	if (s->prev)
		s->prev->next = s->next;
	else
		live_head = s->next;
	if (s->next)
		s->next->prev = s->prev;
	util_wipe(s->bytes, s->len + 1);
	munmap(s->bytes, s->maplen);
	util_wipe(s, sizeof(*s));
	free(s);
}

struct secbuf *secbuf_dup(const struct secbuf *s)
{
	return s ? secbuf_new(s->bytes, s->len) : NULL;
}

size_t secbuf_len(const struct secbuf *s)
{
	return s ? s->len : 0;
}

bool secbuf_equal(const struct secbuf *a, const struct secbuf *b)
{
	if (!a || !b || a->len != b->len)
		return false;
	unsigned char diff = 0;
	for (size_t i = 0; i < a->len; i++)
		diff |= a->bytes[i] ^ b->bytes[i];
	return diff == 0;
}

char *secbuf_header(const struct secbuf *s, const char *name, const char *prefix)
{
	size_t nl = strlen(name), pl = prefix ? strlen(prefix) : 0;
	size_t total = nl + 2 + pl + s->len + 1;
	char *h = malloc(total);
	if (!h)
		return NULL;
	memcpy(h, name, nl);
	memcpy(h + nl, ": ", 2);
	if (pl)
		memcpy(h + nl + 2, prefix, pl);
	memcpy(h + nl + 2 + pl, s->bytes, s->len);
	h[total - 1] = '\0';
	return h;
}

void secbuf_header_free(char *h)
{
	if (!h)
		return;
	util_wipe(h, strlen(h));
	free(h);
}

const unsigned char *secbuf_expose(const struct secbuf *s)
{
	return s->bytes;
}

/* A byte that would make a short match part of a longer word. */
static bool word_byte(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_' || c == '.' || c == '~';
}

/* Blank every occurrence of needle in text. A short needle is blanked only
 * where it stands alone (not inside a longer token): blanking every "abc"
 * of a log line would destroy it without protecting anything. */
static size_t redact(char *text, const unsigned char *needle, size_t n)
{
	size_t found = 0;
	if (n == 0)
		return 0;
	for (char *p = text; (p = memmem(p, strlen(p), needle, n)) != NULL;) {
		bool alone = (p == text || !word_byte((unsigned char)p[-1])) &&
		             !word_byte((unsigned char)p[n]);
		if (n >= SECBUF_MIN_REDACT_LEN || alone) {
			memset(p, '*', n);
			found++;
		}
		p += n;
	}
	return found;
}

/* The secret as it appears inside a JSON string (\/ \" \\ escaped) or a
 * URL (percent-encoded, either case), when that differs from the raw form. */
static size_t redact_encoded(char *text, const unsigned char *b, size_t len)
{
	size_t found = 0;
	char *json = malloc(2 * len + 1), *url = malloc(3 * len + 1);
	if (!json || !url)
		goto out;
	size_t j = 0;
	for (size_t i = 0; i < len; i++) {
		if (b[i] == '/' || b[i] == '"' || b[i] == '\\')
			json[j++] = '\\';
		json[j++] = (char)b[i];
	}
	if (j != len)
		found += redact(text, (unsigned char *)json, j);
	for (int lower = 0; lower < 2; lower++) {
		static const char hex[2][17] = {"0123456789ABCDEF", "0123456789abcdef"};
		size_t u = 0;
		for (size_t i = 0; i < len; i++) {
			unsigned char c = b[i];
			if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			    (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' ||
			    c == '~') {
				url[u++] = (char)c;
			} else {
				url[u++] = '%';
				url[u++] = hex[lower][c >> 4];
				url[u++] = hex[lower][c & 15];
			}
		}
		if (u != len)
			found += redact(text, (unsigned char *)url, u);
	}
out:
	if (json)
		util_wipe(json, 2 * len + 1);
	if (url)
		util_wipe(url, 3 * len + 1);
	free(json);
	free(url);
	return found;
}

size_t secbuf_redact_live(char *text)
{
	size_t found = 0;
	for (const struct secbuf *s = live_head; s; s = s->next) {
		found += redact(text, s->bytes, s->len);
		found += redact_encoded(text, s->bytes, s->len);
	}
	return found;
}
