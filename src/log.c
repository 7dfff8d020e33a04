/* log.c - journal or stderr, with scrubbing of secrets on the way out. */
#include "autoconfig.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#define SD_JOURNAL_SUPPRESS_LOCATION
#include <openssl/evp.h>
#include <systemd/sd-journal.h>

#include "log.h"
#include "secbuf.h"
#include "util.h"

#define LOG_MAX_FIELDS      16
#define LOG_MAX_RECORD      8192
#define LOG_MIN_JWT_SEGMENT 8 /* base64url characters in each segment of a JWT */
#define LOG_MIN_REFRESH_LEN                                                                        \
	16 /* "1//" and this many token characters */ /* bytes of one message; the rest is cut with a note */
#define LOG_IDENTIFIER    "seetickets-bq"
#define LOG_MIN_TOKEN_LEN 16 /* shorter "ya29."/JWT look-alikes are not secrets */

static int log_level = LOG_INFO;
static bool log_journal;
static log_sink_fn log_sink;
static void *log_sink_data;

static const char *const level_names[] = {
        [LOG_EMERG] = "emerg", [LOG_ALERT] = "alert",     [LOG_CRIT] = "crit",
        [LOG_ERR] = "error",   [LOG_WARNING] = "warning", [LOG_NOTICE] = "notice",
        [LOG_INFO] = "info",   [LOG_DEBUG] = "debug",
};

/* systemd sets JOURNAL_STREAM=dev:inode for the stream it connected; only if
 * stderr is still that stream are we talking to the journal. */
static bool stderr_is_journal(void)
{
	const char *e = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;
	if (!e || sscanf(e, "%llu:%llu", &dev, &ino) != 2)
		return false;
	if (fstat(STDERR_FILENO, &st) < 0)
		return false;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void log_open(enum log_target target)
{
	switch (target) {
	case LOG_TARGET_JOURNAL:
		log_journal = true;
		break;
	case LOG_TARGET_STDERR:
		log_journal = false;
		break;
	case LOG_TARGET_AUTO:
		log_journal = stderr_is_journal();
		break;
	}
}

int log_is_journal(void)
{
	return log_journal;
}

void log_set_level(int prio)
{
	log_level = prio;
}

int log_get_level(void)
{
	return log_level;
}

int log_level_parse(const char *name)
{
	static const int accepted[] = {LOG_DEBUG, LOG_INFO, LOG_NOTICE, LOG_WARNING, LOG_ERR};
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(accepted); i++)
		if (name && strcmp(name, level_names[accepted[i]]) == 0)
			return accepted[i];
	return -EINVAL;
}

const char *log_level_name(int prio)
{
	if (prio < 0 || prio > LOG_DEBUG)
		return "?";
	return level_names[prio];
}

void log_set_sink(log_sink_fn fn, void *userdata)
{
	log_sink = fn;
	log_sink_data = userdata;
}

void log_lines(int prio, const char *text)
{
	for (const char *p = text; p && *p;) {
		size_t n = strcspn(p, "\n");
		if (n > 0)
			log_write(prio, NULL, 0, "%.*s", (int)n, p);
		p += n;
		p += *p == '\n';
	}
}

void log_sink_discard(int prio, const char *message, const struct log_field *fields, size_t nfields,
                      void *userdata)
{
	(void)prio;
	(void)message;
	(void)fields;
	(void)nfields;
	(void)userdata;
}

static bool is_token_char(unsigned char c)
{
	return isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == '+' || c == '/' ||
	       c == '=';
}

static void blank_run(char *p, size_t n)
{
	memset(p, '*', n);
}

/* A run of token characters; a JSON-escaped slash ("\/") counts as one. */
static size_t token_run(const char *p)
{
	size_t n = 0;
	for (;;) {
		if (p[n] && is_token_char((unsigned char)p[n]))
			n++;
		else if (p[n] == '\\' && p[n + 1] == '/')
			n += 2;
		else
			return n;
	}
}

/* "NAME<separators>value": a header or field name, then spaces, tabs, ':',
 * '=' or quotes, then the value. */
static void scrub_named(char *text, const char *name)
{
	size_t nl = strlen(name);
	for (char *p = text; (p = strcasestr(p, name)) != NULL;) {
		char *v = p + nl;
		v += strspn(v, " \t:=\"'");
		size_t n = v > p + nl ? token_run(v) : 0;
		if (n > 0)
			blank_run(v, n);
		p = v + n;
	}
}

/* "Bearer <token>" (any case) and "ya29.<token>" (Google access tokens). */
static void scrub_prefixed(char *text, const char *prefix, size_t min_len)
{
	size_t pl = strlen(prefix);
	for (char *p = text; (p = strcasestr(p, prefix)) != NULL;) {
		char *v = p + pl;
		size_t n = token_run(v);
		if (n >= min_len)
			blank_run(v, n);
		p = v + n;
	}
}

/* A JWT (JWS) is three base64url segments joined by dots, a JWE five. Its
 * header usually starts "eyJ" (base64 of '{"'), but whitespace or key order
 * can change that, so the shape decides: every segment at least
 * LOG_MIN_JWT_SEGMENT characters of the base64url alphabet. A host name
 * ("bigquery.googleapis.com") has a short segment and is left alone. */
static bool b64url(unsigned char c)
{
	return isalnum(c) || c == '-' || c == '_';
}

static void scrub_jwts(char *text)
{
	for (char *p = text; *p;) {
		if (!b64url((unsigned char)*p) || (p > text && b64url((unsigned char)p[-1]))) {
			p++;
			continue;
		}
		size_t n = 0, seg = 0, segs = 1;
		bool ok = true;
		for (;; n++) {
			unsigned char c = (unsigned char)p[n];
			if (b64url(c)) {
				seg++;
			} else if (c == '.' && b64url((unsigned char)p[n + 1])) {
				ok = ok && seg >= LOG_MIN_JWT_SEGMENT;
				seg = 0;
				segs++;
			} else {
				break;
			}
		}
		ok = ok && seg >= LOG_MIN_JWT_SEGMENT && (segs == 3 || segs == 5) &&
		     n >= LOG_MIN_TOKEN_LEN;
		if (ok || (strncmp(p, "eyJ", 3) == 0 && segs >= 3 && n >= LOG_MIN_TOKEN_LEN))
			blank_run(p, n);
		p += n ? n : 1;
	}
}

void log_scrub(char *text)
{
	secbuf_redact_live(text);
	scrub_named(text, "Bearer");
	scrub_named(text, "x-api-key");
	scrub_named(text, "x-goog-api-key");
	scrub_prefixed(text, "ya29.", 1);
	scrub_prefixed(text, "1//", LOG_MIN_REFRESH_LEN); /* Google refresh tokens */
	scrub_prefixed(text, "GOCSPX-", 1);               /* Google client secrets */
	scrub_named(text, "assertion");
	scrub_named(text, "refresh_token");
	scrub_named(text, "client_secret");
	scrub_named(text, "access_token");
	scrub_named(text, "private_key");
	scrub_jwts(text);
}

void log_mask_quoted(char *text)
{
	char *w = text;
	for (const char *p = text; *p;) {
		bool quote =
		        *p == '"' || (*p == '\'' && (p == text || !isalnum((unsigned char)p[-1])));
		const char *end = quote ? strchr(p + 1, *p) : NULL;
		if (quote && end && end - p >= 4) {
			/* "..." is never longer than what it replaces: in place is safe. */
			char q = *p;
			*w++ = q;
			*w++ = '.';
			*w++ = '.';
			*w++ = '.';
			*w++ = q;
			p = end + 1;
			continue;
		}
		*w++ = *p++;
	}
	*w = '\0';
}

void log_scrub_copy(const char *text, char *out, size_t len)
{
	char *tmp = strdup(text ? text : "");
	if (!tmp) {
		snprintf(out, len, "(out of memory)");
		return;
	}
	log_scrub(tmp);
	for (char *p = tmp; *p; p++)
		if (iscntrl((unsigned char)*p))
			*p = ' ';
	snprintf(out, len, "%s", tmp);
	util_wipe(tmp, strlen(tmp));
	free(tmp);
}

static void write_stderr(int prio, const char *msg, const struct log_field *fields, size_t n)
{
	struct buf line = {0};
	buf_printf(&line, "%s: %s", log_level_name(prio), msg);
	for (size_t i = 0; i < n; i++)
		buf_printf(&line, " %s=%s", fields[i].name, fields[i].value);
	buf_puts(&line, "\n");
	if (line.data)
		(void)util_write_all(STDERR_FILENO, line.data, line.len);
	buf_free(&line);
}

static void write_journal(int prio, const char *msg, const struct log_field *fields, size_t n)
{
	struct iovec iov[LOG_MAX_FIELDS + 3];
	char *owned[LOG_MAX_FIELDS + 3];
	size_t k = 0;

	if (asprintf(&owned[k], "MESSAGE=%s", msg) >= 0)
		k++;
	if (asprintf(&owned[k], "PRIORITY=%d", prio) >= 0)
		k++;
	if (asprintf(&owned[k], "SYSLOG_IDENTIFIER=%s", LOG_IDENTIFIER) >= 0)
		k++;
	for (size_t i = 0; i < n && i < LOG_MAX_FIELDS; i++)
		if (asprintf(&owned[k], "%s=%s", fields[i].name, fields[i].value) >= 0)
			k++;
	for (size_t i = 0; i < k; i++) {
		iov[i].iov_base = owned[i];
		iov[i].iov_len = strlen(owned[i]);
	}
	if (sd_journal_sendv(iov, (int)k) < 0)
		write_stderr(prio, msg, fields, n);
	for (size_t i = 0; i < k; i++)
		free(owned[i]);
}

const char *log_value(const char *s, size_t len, char out[LOG_VALUE_MAX])
{
	bool plain = s && len <= LOG_VALUE_SHOW;
	for (size_t i = 0; plain && i < len; i++)
		plain = (unsigned char)s[i] >= 0x20 && (unsigned char)s[i] != 0x7f;
	if (plain) {
		memcpy(out, s, len);
		out[len] = '\0';
		return out;
	}
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	if (!s || !EVP_Digest(s, len, md, &mdlen, EVP_sha256(), NULL) || mdlen < 4)
		snprintf(out, LOG_VALUE_MAX, "<%zu bytes>", len);
	else
		snprintf(out, LOG_VALUE_MAX, "<%zu bytes, sha256 %02x%02x%02x%02x>", len, md[0],
		         md[1], md[2], md[3]);
	return out;
}

/* One record is one line of bounded size, whatever went into it: a control
 * character becomes '?', so nothing can forge a second record. */
static void make_printable(char *msg)
{
	size_t n = strlen(msg);
	if (n > LOG_MAX_RECORD) {
		static const char cut[] = " [...cut]";
		memcpy(msg + LOG_MAX_RECORD - sizeof(cut) + 1, cut, sizeof(cut));
	}
	for (unsigned char *p = (unsigned char *)msg; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			*p = '?';
}

void log_write(int prio, const struct log_field *fields, size_t nfields, const char *fmt, ...)
{
	if (prio > log_level)
		return;

	char *msg = NULL;
	va_list ap;
	va_start(ap, fmt);
	int r = vasprintf(&msg, fmt, ap);
	va_end(ap);
	if (r < 0)
		return;
	log_scrub(msg);
	make_printable(msg);

	/* Field values are scrubbed too: copy them, the caller's stay intact. */
	struct log_field safe[LOG_MAX_FIELDS];
	char *vals[LOG_MAX_FIELDS];
	size_t n = nfields < LOG_MAX_FIELDS ? nfields : LOG_MAX_FIELDS;
	for (size_t i = 0; i < n; i++) {
		vals[i] = strdup(fields[i].value ? fields[i].value : "");
		if (vals[i]) {
			log_scrub(vals[i]);
			make_printable(vals[i]);
		}
		safe[i].name = fields[i].name;
		safe[i].value = vals[i] ? vals[i] : "";
	}

	if (log_sink)
		log_sink(prio, msg, safe, n, log_sink_data);
	else if (log_journal)
		write_journal(prio, msg, safe, n);
	else
		write_stderr(prio, msg, safe, n);

	for (size_t i = 0; i < n; i++)
		free(vals[i]);
	free(msg);
}
