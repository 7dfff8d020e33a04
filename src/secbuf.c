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

/* Secrets shorter than this are not redacted by value: blanking every "a" in
 * a log line would destroy it without protecting anything. */
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

size_t secbuf_redact_live(char *text)
{
	size_t found = 0;
	for (const struct secbuf *s = live_head; s; s = s->next) {
		if (s->len < SECBUF_MIN_REDACT_LEN)
			continue;
		char *p = text;
		while ((p = memmem(p, strlen(p), s->bytes, s->len)) != NULL) {
			memset(p, '*', s->len);
			p += s->len;
			found++;
		}
	}
	return found;
}
