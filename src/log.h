/* log.h - leveled logging. Under systemd (stderr is the journal stream named by
 * JOURNAL_STREAM) each record goes to the journal with PRIORITY= and structured
 * fields; elsewhere it is one plain line on stderr. Every record is scrubbed of
 * live secrets (secbuf.h) and of anything shaped like a token, JWT or bearer
 * header before it leaves the process. */
#ifndef STBQ_LOG_H
#define STBQ_LOG_H

#include <stddef.h>
#include <syslog.h> /* LOG_ERR .. LOG_DEBUG are the levels */

/* A structured journal field: NAME is upper case ("FEED", "ROWS_NEW"). */
struct log_field {
	const char *name;
	const char *value;
};

enum log_target {
	LOG_TARGET_AUTO, /* journal if JOURNAL_STREAM matches stderr, else stderr */
	LOG_TARGET_STDERR,
	LOG_TARGET_JOURNAL,
};

void log_open(enum log_target target); /* decide the sink once at start-up */
void log_set_level(int prio);          /* records above prio are dropped */
int log_get_level(void);
int log_level_parse(const char *name); /* "debug".."error" -> LOG_*, or -EINVAL */
const char *log_level_name(int prio);
int log_is_journal(void);

/* Write one record. `fields` may be NULL when nfields is 0. */
void log_write(int prio, const struct log_field *fields, size_t nfields, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

/* One record per non-empty line of `text` (e.g. a list of configuration
 * problems), so each line stays its own journal entry. */
void log_lines(int prio, const char *text);

/* Scrub a formatted record in place (exported for tests and the HTTP layer's
 * error bodies): live secrets, "Bearer x", "ya29.x", JWT-shaped strings. */
void log_scrub(char *text);
/* Replace what stands in quotes ("x" or 'x', an apostrophe inside a word
 * excepted) by "...": an error text from a server may quote the value it
 * refused, and that value may be personal data. In place. */
void log_mask_quoted(char *text);
/* Copy text into out (len bytes), scrubbed before it is cut, so that a
 * secret cut at the edge is still recognised; control characters become
 * spaces. */
void log_scrub_copy(const char *text, char *out, size_t len);

/* A value from outside (a row key, an event code) as it may be logged:
 * itself when it is short and printable, otherwise its length and a short
 * hash ("<300000 bytes, sha256 1f2e3d4c>"), so no input can forge a record,
 * hide behind control characters or flood the log. Returns out. */
#define LOG_VALUE_SHOW 64 /* bytes of a value shown as is */
#define LOG_VALUE_MAX  (LOG_VALUE_SHOW + 48)
const char *log_value(const char *s, size_t len, char out[LOG_VALUE_MAX]);

/* Tests capture records here instead of stderr/journal; NULL restores. */
typedef void (*log_sink_fn)(int prio, const char *message, const struct log_field *fields,
                            size_t nfields, void *userdata);
void log_set_sink(log_sink_fn fn, void *userdata);
/* A sink that drops every record (fuzzers, benchmarks): records are still
 * formatted and scrubbed, so those paths stay exercised. */
void log_sink_discard(int prio, const char *message, const struct log_field *fields, size_t nfields,
                      void *userdata);

#define log_error(...)   log_write(LOG_ERR, NULL, 0, __VA_ARGS__)
#define log_warning(...) log_write(LOG_WARNING, NULL, 0, __VA_ARGS__)
#define log_notice(...)  log_write(LOG_NOTICE, NULL, 0, __VA_ARGS__)
#define log_info(...)    log_write(LOG_INFO, NULL, 0, __VA_ARGS__)
#define log_debug(...)   log_write(LOG_DEBUG, NULL, 0, __VA_ARGS__)

#endif
