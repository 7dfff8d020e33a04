/* config.c - read the libconfig file and validate every key in one pass.
 *
 * The keys are described by tables (name, type, range, default, check), so the
 * list of known keys, the defaults and the "did you mean" suggestions all come
 * from one place. Nothing read from the file is ever echoed in a problem
 * report except integers: a user who pastes the API key itself into
 * api_key_secret must not find it in the journal. */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <libconfig.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "url.h"
#include "util.h"

/* Ranges of the integer keys. */
#define PAGE_SIZE_MIN          0 /* 0 = send no `limit` */
#define PAGE_SIZE_MAX          10000
#define TIMEOUT_MIN            1
#define TIMEOUT_MAX            3600
#define MAX_RESPONSE_BYTES_MIN 4096LL
#define MAX_RESPONSE_BYTES_MAX 1073741824LL /* 1 GiB */
#define BATCH_ROWS_MIN         1
#define BATCH_ROWS_MAX         50000
#define BATCH_BYTES_MIN        1024LL
#define BATCH_BYTES_MAX        10000000LL /* BigQuery's request limit is 10 MB */
#define INTERVAL_MIN           1
#define INTERVAL_MAX           86400
#define LOOKBACK_DAYS_MIN      0
#define LOOKBACK_DAYS_MAX      3650
#define CODES_PER_REQUEST_MIN  1
#define CODES_PER_REQUEST_MAX  1000
/* Lengths of names. */
#define PROJECT_ID_MIN          6
#define PROJECT_ID_MAX          30
#define LEGACY_PROJECT_PART_MAX 63
#define BQ_NAME_MAX             1024 /* dataset and table ids */
#define SECRET_SEGMENT_MAX      255
#define SUGGEST_DISTANCE        2 /* "did you mean" for keys this close to a known one */
#define SOURCE_FILE_MAX         (4 * 1024 * 1024) /* re-read only to check integer literals */

#define URL_PROBLEM "must be https:// (plain http only for loopback hosts)"

enum kind {
	K_GROUP,
	K_STRING,     /* char * */
	K_INT,        /* int */
	K_INT64,      /* long long */
	K_BOOL,       /* bool */
	K_LEVEL,      /* string -> LOG_* */
	K_METHOD,     /* string -> enum config_insert_method */
	K_KEY_SOURCE, /* one of the three API key sources */
	K_CODES,      /* list of strings */
};

#define F_REQUIRED    0x1
#define F_STRIP_SLASH 0x2 /* endpoints: paths are appended with a leading '/' */

struct loader;
/* Returns NULL if the value is fine, else the problem (static or ld->scratch). */
typedef const char *(*check_fn)(struct loader *ld, const char *value);

struct spec {
	const char *name;
	enum kind kind;
	size_t off; /* into struct config */
	long long min, max;
	const char *def; /* default of string-valued keys */
	long long idef;  /* default of integer and bool keys */
	check_fn check;
	unsigned flags;
	int source;                 /* K_KEY_SOURCE: enum config_key_source */
	const struct spec *members; /* K_GROUP: terminated by a NULL name */
};

struct problem {
	char *file;
	unsigned line;
	char *text; /* "key: problem" */
};

struct source_file {
	char *name;
	char *text; /* NULL if it could not be read again */
};

struct loader {
	const char *path;
	char *include_dir; /* NULL: the file is in the working directory */
	config_t cfg;
	struct config *c;
	struct problem *problems;
	size_t n_problems;
	bool oom;
	int n_key_sources;
	struct source_file *sources;
	size_t n_sources;
	char scratch[256];
};

/* Marks a setting that already has a problem, so cross-checks skip it. */
static int bad_marker;

static const char *check_abs_path(struct loader *ld, const char *v);
static const char *check_metrics_file(struct loader *ld, const char *v);
static const char *check_url(struct loader *ld, const char *v);
static const char *check_secret_name(struct loader *ld, const char *v);
static const char *check_credential_name(struct loader *ld, const char *v);
static const char *check_credentials(struct loader *ld, const char *v);
static const char *check_metadata_host(struct loader *ld, const char *v);
static const char *check_ca_file(struct loader *ld, const char *v);
static const char *check_project(struct loader *ld, const char *v);
static const char *check_bq_name(struct loader *ld, const char *v);
static const char *check_nonempty(struct loader *ld, const char *v);

#define OFF(member) offsetof(struct config, member)

static const struct spec seetickets_keys[] = {
        {.name = "base_url",
         .kind = K_STRING,
         .off = OFF(seetickets.base_url),
         .def = "https://clients-api.seetickets.com/v1",
         .check = check_url},
        {.name = "api_key_secret",
         .kind = K_KEY_SOURCE,
         .source = CONFIG_KEY_SECRET,
         .check = check_secret_name},
        {.name = "api_key_file",
         .kind = K_KEY_SOURCE,
         .source = CONFIG_KEY_FILE,
         .check = check_abs_path},
        {.name = "api_key_credential",
         .kind = K_KEY_SOURCE,
         .source = CONFIG_KEY_CREDENTIAL,
         .check = check_credential_name},
        {.name = "page_size",
         .kind = K_INT,
         .off = OFF(seetickets.page_size),
         .min = PAGE_SIZE_MIN,
         .max = PAGE_SIZE_MAX,
         .idef = 100},
        {.name = "timeout",
         .kind = K_INT,
         .off = OFF(seetickets.timeout),
         .min = TIMEOUT_MIN,
         .max = TIMEOUT_MAX,
         .idef = 30},
        {.name = "max_response_bytes",
         .kind = K_INT64,
         .off = OFF(seetickets.max_response_bytes),
         .min = MAX_RESPONSE_BYTES_MIN,
         .max = MAX_RESPONSE_BYTES_MAX,
         .idef = 8388608},
        {0},
};

static const struct spec google_keys[] = {
        {.name = "credentials",
         .kind = K_STRING,
         .off = OFF(google.credentials),
         .def = "auto",
         .check = check_credentials},
        {.name = "bigquery_endpoint",
         .kind = K_STRING,
         .off = OFF(google.bigquery_endpoint),
         .def = "https://bigquery.googleapis.com",
         .check = check_url,
         .flags = F_STRIP_SLASH},
        {.name = "secretmanager_endpoint",
         .kind = K_STRING,
         .off = OFF(google.secretmanager_endpoint),
         .def = "https://secretmanager.googleapis.com",
         .check = check_url,
         .flags = F_STRIP_SLASH},
        {.name = "metadata_host",
         .kind = K_STRING,
         .off = OFF(google.metadata_host),
         .def = "metadata.google.internal",
         .check = check_metadata_host},
        {.name = "ca_file",
         .kind = K_STRING,
         .off = OFF(google.ca_file),
         .def = "",
         .check = check_ca_file},
        {0},
};

static const struct spec bigquery_keys[] = {
        {.name = "project",
         .kind = K_STRING,
         .off = OFF(bigquery.project),
         .check = check_project,
         .flags = F_REQUIRED},
        {.name = "dataset",
         .kind = K_STRING,
         .off = OFF(bigquery.dataset),
         .check = check_bq_name,
         .flags = F_REQUIRED},
        {.name = "location",
         .kind = K_STRING,
         .off = OFF(bigquery.location),
         .def = "EU",
         .check = check_nonempty},
        {.name = "insert_method",
         .kind = K_METHOD,
         .off = OFF(bigquery.insert_method),
         .def = "streaming"},
        {.name = "batch_rows",
         .kind = K_INT,
         .off = OFF(bigquery.batch_rows),
         .min = BATCH_ROWS_MIN,
         .max = BATCH_ROWS_MAX,
         .idef = 500},
        {.name = "batch_bytes",
         .kind = K_INT64,
         .off = OFF(bigquery.batch_bytes),
         .min = BATCH_BYTES_MIN,
         .max = BATCH_BYTES_MAX,
         .idef = 9000000},
        {.name = "create_tables", .kind = K_BOOL, .off = OFF(bigquery.create_tables), .idef = 1},
        {0},
};

static const struct spec sales_keys[] = {
        {.name = "enabled", .kind = K_BOOL, .off = OFF(sales.feed.enabled), .idef = 1},
        {.name = "table",
         .kind = K_STRING,
         .off = OFF(sales.feed.table),
         .def = "sales",
         .check = check_bq_name},
        {.name = "interval",
         .kind = K_INT,
         .off = OFF(sales.feed.interval),
         .min = INTERVAL_MIN,
         .max = INTERVAL_MAX,
         .idef = 300},
        {.name = "event_codes", .kind = K_CODES},
        {.name = "event_lookback_days",
         .kind = K_INT,
         .off = OFF(sales.event_lookback_days),
         .min = LOOKBACK_DAYS_MIN,
         .max = LOOKBACK_DAYS_MAX,
         .idef = 30},
        {.name = "codes_per_request",
         .kind = K_INT,
         .off = OFF(sales.codes_per_request),
         .min = CODES_PER_REQUEST_MIN,
         .max = CODES_PER_REQUEST_MAX,
         .idef = 50},
        {.name = "date_filter", .kind = K_BOOL, .off = OFF(sales.date_filter), .idef = 0},
        {.name = "track_changes", .kind = K_BOOL, .off = OFF(sales.feed.track_changes), .idef = 0},
        {0},
};

static const struct spec events_keys[] = {
        {.name = "enabled", .kind = K_BOOL, .off = OFF(events.feed.enabled), .idef = 1},
        {.name = "table",
         .kind = K_STRING,
         .off = OFF(events.feed.table),
         .def = "events",
         .check = check_bq_name},
        {.name = "interval",
         .kind = K_INT,
         .off = OFF(events.feed.interval),
         .min = INTERVAL_MIN,
         .max = INTERVAL_MAX,
         .idef = 3600},
        {.name = "track_changes", .kind = K_BOOL, .off = OFF(events.feed.track_changes), .idef = 0},
        {0},
};

static const struct spec top_keys[] = {
        {.name = "log_level", .kind = K_LEVEL, .off = OFF(log_level), .def = "info"},
        {.name = "state_dir",
         .kind = K_STRING,
         .off = OFF(state_dir),
         .def = "/var/lib/seetickets-bq",
         .check = check_abs_path},
        {.name = "metrics_file",
         .kind = K_STRING,
         .off = OFF(metrics_file),
         .def = "",
         .check = check_metrics_file},
        {.name = "seetickets", .kind = K_GROUP, .members = seetickets_keys},
        {.name = "google", .kind = K_GROUP, .members = google_keys},
        {.name = "bigquery", .kind = K_GROUP, .members = bigquery_keys},
        {.name = "sales", .kind = K_GROUP, .members = sales_keys},
        {.name = "events", .kind = K_GROUP, .members = events_keys},
        {0},
};

/* ---- problem reports ---- */

/* The name of a file as libconfig reports it: the file itself by the caller's
 * path, an @include'd one by the name written in the @include, which libconfig
 * 1.5 looks for under the include directory (see config_load()). */
static char *file_name(struct loader *ld, const char *file)
{
	if (!file || strcmp(file, ld->path) == 0 || !ld->include_dir)
		return strdup(file ? file : ld->path);
	struct buf b = {0};
	size_t n = strlen(ld->include_dir);
	if (buf_printf(&b, "%s%s%s", ld->include_dir, ld->include_dir[n - 1] == '/' ? "" : "/",
	               file) < 0) {
		buf_free(&b);
		return NULL;
	}
	return buf_steal(&b);
}

static char *xstrdup(struct loader *ld, const char *s)
{
	char *p = strdup(s);
	if (!p)
		ld->oom = true;
	return p;
}

static void mark_bad(config_setting_t *s)
{
	if (s)
		config_setting_set_hook(s, &bad_marker);
}

static bool is_bad(const config_setting_t *s)
{
	return s && config_setting_get_hook(s) == &bad_marker;
}

/* A problem belongs to the line of the setting `s`. With s == NULL (a group
 * that is not in the file at all) or the root (which has no line), the
 * problem goes on line 1: that is where a missing top-level group is missing. */
static void report(struct loader *ld, config_setting_t *s, const char *key, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

static void report(struct loader *ld, config_setting_t *s, const char *key, const char *fmt, ...)
{
	struct buf b = {0};
	va_list ap;
	mark_bad(s);
	if (buf_printf(&b, "%s: ", key) < 0)
		goto oom;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || buf_reserve(&b, (size_t)n) < 0)
		goto oom;
	va_start(ap, fmt);
	vsnprintf(b.data + b.len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b.len += (size_t)n;

	struct problem *p = realloc(ld->problems, (ld->n_problems + 1) * sizeof(*p));
	if (!p)
		goto oom;
	ld->problems = p;
	p = &ld->problems[ld->n_problems];
	p->file = file_name(ld, s ? config_setting_source_file(s) : NULL);
	p->line = s && !config_setting_is_root(s) ? config_setting_source_line(s) : 1;
	p->text = buf_steal(&b);
	if (!p->file || !p->text) {
		free(p->file);
		free(p->text);
		goto oom;
	}
	ld->n_problems++;
	return;
oom:
	buf_free(&b);
	ld->oom = true;
}

/* Problems of the file itself come first, then those of @include'd files,
 * each by line; the walk already produced them in file order within a group,
 * but missing keys and cross-checks are found afterwards. */
static int problem_cmp(const struct problem *a, const struct problem *b, const char *path)
{
	bool a_main = strcmp(a->file, path) == 0, b_main = strcmp(b->file, path) == 0;
	if (a_main != b_main)
		return a_main ? -1 : 1;
	int r = strcmp(a->file, b->file);
	if (r)
		return r;
	return a->line < b->line ? -1 : a->line > b->line;
}

static void sort_problems(struct loader *ld)
{
	/* Insertion sort: stable, and there are only ever a few. */
	for (size_t i = 1; i < ld->n_problems; i++) {
		struct problem p = ld->problems[i];
		size_t j = i;
		while (j > 0 && problem_cmp(&ld->problems[j - 1], &p, ld->path) > 0) {
			ld->problems[j] = ld->problems[j - 1];
			j--;
		}
		ld->problems[j] = p;
	}
}

/* ---- value checks ---- */

static bool all_chars(const char *s, size_t len, const char *extra, bool upper)
{
	for (size_t i = 0; i < len; i++) {
		char ch = s[i];
		if ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9'))
			continue;
		if (upper && ch >= 'A' && ch <= 'Z')
			continue;
		if (ch && strchr(extra, ch))
			continue;
		return false;
	}
	return true;
}

static const char *check_abs_path(struct loader *ld, const char *v)
{
	return v[0] == '/' ? NULL : "must be an absolute path";
}

static const char *check_metrics_file(struct loader *ld, const char *v)
{
	return !v[0] || v[0] == '/' ? NULL : "must be empty or an absolute path";
}

static const char *check_url(struct loader *ld, const char *v)
{
	return url_allowed(v) ? NULL : URL_PROBLEM;
}

/* projects/PROJECT/secrets/NAME[/versions/VERSION]: PROJECT is an id
 * (legacy "example.com:proj" included) or a number, NAME and VERSION are what
 * Secret Manager allows (VERSION: a number, "latest" or an alias). Upper case
 * is let through in PROJECT too: the documented placeholder is "PROJECT", and
 * Secret Manager gives a clear error for a project that does not exist. */
static const char *check_secret_name(struct loader *ld, const char *v)
{
	static const char *const fixed[] = {"projects", NULL, "secrets", NULL, "versions", NULL};
	static const char *const extra[] = {NULL, "-.:", NULL, "-_", NULL, "-_"};
	const char *s = v;
	size_t n = 0;
	for (;;) {
		size_t len = strcspn(s, "/");
		if (n >= UTIL_ARRAY_SIZE(fixed) || len == 0)
			goto bad;
		if (fixed[n]) {
			if (len != strlen(fixed[n]) || strncmp(s, fixed[n], len) != 0)
				goto bad;
		} else if (len > SECRET_SEGMENT_MAX || !all_chars(s, len, extra[n], true)) {
			goto bad;
		}
		n++;
		if (!s[len])
			break;
		s += len + 1;
	}
	if (n == 4 || n == 6)
		return NULL;
bad:
	return "must be projects/PROJECT/secrets/NAME or "
	       "projects/PROJECT/secrets/NAME/versions/VERSION";
}

static const char *check_credential_name(struct loader *ld, const char *v)
{
	if (!v[0])
		return "must not be empty";
	if (strchr(v, '/') || strcmp(v, ".") == 0 || strcmp(v, "..") == 0)
		return "must be a plain file name (no '/')";
	return NULL;
}

static const char *check_credentials(struct loader *ld, const char *v)
{
	if (strcmp(v, "auto") == 0 || strcmp(v, "metadata") == 0 || v[0] == '/')
		return NULL;
	return "must be \"auto\", \"metadata\" or an absolute path";
}

static const char *check_metadata_host(struct loader *ld, const char *v)
{
	(void)ld;
	return url_is_host_port(v) ? NULL : "must be HOST or HOST:PORT (no scheme, no '/')";
}

static const char *check_ca_file(struct loader *ld, const char *v)
{
	if (!v[0])
		return NULL;
	int fd = open(v, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	int err = 0;
	struct stat st;
	if (fd < 0)
		err = errno;
	else if (fstat(fd, &st) < 0)
		err = errno;
	else if (S_ISDIR(st.st_mode))
		err = EISDIR;
	if (fd >= 0)
		close(fd);
	if (!err)
		return NULL;
	snprintf(ld->scratch, sizeof(ld->scratch), "cannot read: %s", strerror(err));
	return ld->scratch;
}

static bool lower_letter(char ch)
{
	return ch >= 'a' && ch <= 'z';
}

/* A project id: PROJECT_ID_MIN..MAX of [a-z0-9-], starting with a letter and
 * not ending with '-'. Legacy domain-scoped ids ("example.com:my-proj") are
 * still valid in BigQuery, so the domain form is accepted too. */
static const char *check_project(struct loader *ld, const char *v)
{
	static const char problem[] =
	        "must be a Google Cloud project id (6-30 lowercase letters, digits or '-', "
	        "starting with a letter)";
	const char *id = v;
	size_t min = PROJECT_ID_MIN, max = PROJECT_ID_MAX;
	const char *colon = strchr(v, ':');
	if (colon) {
		size_t dlen = (size_t)(colon - v);
		if (dlen < 3 || !memchr(v, '.', dlen) || !all_chars(v, dlen, ".-", false) ||
		    v[0] == '.' || v[0] == '-' || v[dlen - 1] == '.' || v[dlen - 1] == '-')
			return problem;
		id = colon + 1;
		min = 1;
		max = LEGACY_PROJECT_PART_MAX;
	}
	size_t len = strlen(id);
	if (len < min || len > max || !lower_letter(id[0]) || id[len - 1] == '-' ||
	    !all_chars(id, len, "-", false))
		return problem;
	return NULL;
}

static const char *check_bq_name(struct loader *ld, const char *v)
{
	size_t len = strlen(v);
	if (len < 1 || len > BQ_NAME_MAX || !all_chars(v, len, "_", true))
		return "must be 1 to 1024 letters, digits or underscores";
	return NULL;
}

static const char *check_nonempty(struct loader *ld, const char *v)
{
	return v[0] ? NULL : "must not be empty";
}

/* ---- integers ----
 *
 * libconfig 1.5 stores a decimal or hex literal that does not fit an int
 * truncated to 32 bits without a word, so "page_size = 4294967396" would read
 * as 100. The source line is read again to find the literal; when its value
 * truncates to what libconfig stored, the literal is the real value. */

static const char *source_text(struct loader *ld, const char *file)
{
	for (size_t i = 0; i < ld->n_sources; i++)
		if (strcmp(ld->sources[i].name, file) == 0)
			return ld->sources[i].text;
	struct source_file *p = realloc(ld->sources, (ld->n_sources + 1) * sizeof(*p));
	if (!p) {
		ld->oom = true;
		return NULL;
	}
	ld->sources = p;
	p = &ld->sources[ld->n_sources];
	p->name = strdup(file);
	p->text = NULL;
	if (!p->name) {
		ld->oom = true;
		return NULL;
	}
	ld->n_sources++;
	size_t len;
	if (util_read_file(file, SOURCE_FILE_MAX, &p->text, &len) < 0)
		p->text = NULL;
	return p->text;
}

static bool name_char(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	       ch == '_' || ch == '-' || ch == '*';
}

/* Returns 1 with *value set, 0 if no literal was found, -ERANGE if it does not fit 64 bits. */
static int find_literal(struct loader *ld, const config_setting_t *s, long long *value)
{
	char *file = file_name(ld, config_setting_source_file(s));
	if (!file) {
		ld->oom = true;
		return 0;
	}
	const char *text = source_text(ld, file);
	free(file);
	if (!text)
		return 0;
	for (unsigned l = 1; l < config_setting_source_line(s); l++) {
		text = strchr(text, '\n');
		if (!text)
			return 0;
		text++;
	}
	size_t line_len = strcspn(text, "\n");
	const char *name = config_setting_name(s);
	size_t name_len = strlen(name);
	for (const char *p = text; p + name_len <= text + line_len; p++) {
		if (strncmp(p, name, name_len) != 0 || (p > text && name_char(p[-1])) ||
		    name_char(p[name_len]))
			continue;
		const char *q = p + name_len;
		q += strspn(q, " \t");
		if (*q != '=' && *q != ':')
			continue;
		q++;
		q += strspn(q, " \t");
		bool neg = *q == '-';
		if (*q == '-' || *q == '+')
			q++;
		bool hex = q[0] == '0' && (q[1] == 'x' || q[1] == 'X');
		const char *digits = hex ? q + 2 : q;
		if (!*digits || !strchr(hex ? "0123456789abcdefABCDEF" : "0123456789", *digits))
			return 0;
		unsigned long long u = 0;
		for (const char *d = digits;; d++) {
			unsigned dv;
			if (*d >= '0' && *d <= '9')
				dv = (unsigned)(*d - '0');
			else if (hex && *d >= 'a' && *d <= 'f')
				dv = (unsigned)(*d - 'a' + 10);
			else if (hex && *d >= 'A' && *d <= 'F')
				dv = (unsigned)(*d - 'A' + 10);
			else
				break;
			unsigned base = hex ? 16 : 10;
			if (u > (ULLONG_MAX - dv) / base)
				return -ERANGE;
			u = u * base + dv;
		}
		if (u > (unsigned long long)LLONG_MAX)
			return -ERANGE;
		*value = neg ? -(long long)u : (long long)u;
		return 1;
	}
	return 0;
}

/* The integer value of an INT or INT64 setting; -ERANGE if it overflows. */
static int setting_integer(struct loader *ld, const config_setting_t *s, long long *out)
{
	if (config_setting_type(s) == CONFIG_TYPE_INT64) {
		*out = config_setting_get_int64(s);
		return 0;
	}
	int stored = config_setting_get_int(s);
	long long lit;
	int r = find_literal(ld, s, &lit);
	if (r == -ERANGE)
		return r;
	*out = r == 1 && (int)(uint32_t)(unsigned long long)lit == stored ? lit : stored;
	return 0;
}

/* ---- the walk ---- */

static size_t edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la > 63 || lb > 63)
		return SIZE_MAX;
	size_t row[64];
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t diag = row[0];
		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t up = row[j];
			size_t best = diag + (a[i - 1] != b[j - 1]);
			if (row[j] + 1 < best)
				best = row[j] + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[lb];
}

static void report_unknown(struct loader *ld, config_setting_t *s, const char *key,
                           const struct spec *specs)
{
	const char *name = config_setting_name(s);
	const struct spec *best = NULL;
	size_t best_d = SUGGEST_DISTANCE + 1;
	for (const struct spec *sp = specs; sp->name; sp++) {
		size_t d = edit_distance(name, sp->name);
		if (d < best_d) {
			best_d = d;
			best = sp;
		}
	}
	if (best) {
		report(ld, s, key, "unknown key (did you mean %s?)", best->name);
		return;
	}
	/* A known key in the wrong group: point at where it belongs. */
	for (const struct spec *g = top_keys; g->name; g++) {
		if (g->kind != K_GROUP || g->members == specs)
			continue;
		for (const struct spec *sp = g->members; sp->name; sp++) {
			if (strcmp(sp->name, name) == 0) {
				report(ld, s, key, "unknown key (did you mean %s.%s?)", g->name,
				       sp->name);
				return;
			}
		}
	}
	report(ld, s, key, "unknown key");
}

static const struct spec *find_spec(const struct spec *specs, const char *name)
{
	for (const struct spec *sp = specs; sp->name; sp++)
		if (strcmp(sp->name, name) == 0)
			return sp;
	return NULL;
}

static void *field(struct loader *ld, const struct spec *sp)
{
	return (char *)ld->c + sp->off;
}

static void set_string(struct loader *ld, char **slot, const char *v)
{
	char *p = xstrdup(ld, v);
	if (!p)
		return;
	free(*slot);
	*slot = p;
}

static void apply_key_source(struct loader *ld, config_setting_t *s, const struct spec *sp,
                             const char *key, const char *v)
{
	ld->n_key_sources++;
	if (ld->n_key_sources > 1)
		report(ld, s, key,
		       "only one of api_key_secret, api_key_file or api_key_credential may be set");
	const char *problem = sp->check(ld, v);
	if (problem)
		report(ld, s, key, "%s", problem);
	if (problem || ld->n_key_sources > 1)
		return;
	ld->c->seetickets.key_source = (enum config_key_source)sp->source;
	if (sp->source == CONFIG_KEY_SECRET && !strstr(v, "/versions/")) {
		struct buf b = {0};
		if (buf_printf(&b, "%s/versions/latest", v) < 0) {
			ld->oom = true;
			return;
		}
		free(ld->c->seetickets.key_ref);
		ld->c->seetickets.key_ref = buf_steal(&b);
		return;
	}
	set_string(ld, &ld->c->seetickets.key_ref, v);
}

static void apply_string(struct loader *ld, config_setting_t *s, const struct spec *sp,
                         const char *key)
{
	const char *v = config_setting_get_string(s);
	const char *problem = NULL;
	switch (sp->kind) {
	case K_LEVEL: {
		int level = log_level_parse(v);
		if (level < 0)
			problem = "must be one of debug, info, notice, warning, error";
		else
			*(int *)field(ld, sp) = level;
		break;
	}
	case K_METHOD:
		if (strcmp(v, "streaming") == 0)
			*(enum config_insert_method *)field(ld, sp) = CONFIG_INSERT_STREAMING;
		else if (strcmp(v, "load") == 0)
			*(enum config_insert_method *)field(ld, sp) = CONFIG_INSERT_LOAD;
		else
			problem = "must be \"streaming\" or \"load\"";
		break;
	case K_KEY_SOURCE:
		apply_key_source(ld, s, sp, key, v);
		return;
	default:
		problem = sp->check ? sp->check(ld, v) : NULL;
		if (problem)
			break;
		set_string(ld, (char **)field(ld, sp), v);
		char *stored = *(char **)field(ld, sp);
		size_t len = strlen(stored);
		if ((sp->flags & F_STRIP_SLASH) && len > 0 && stored[len - 1] == '/')
			stored[len - 1] = '\0';
		break;
	}
	if (problem)
		report(ld, s, key, "%s", problem);
}

static void apply_codes(struct loader *ld, config_setting_t *s, const char *key)
{
	int type = config_setting_type(s);
	if (type != CONFIG_TYPE_ARRAY && type != CONFIG_TYPE_LIST) {
		report(ld, s, key, "expected list of strings");
		return;
	}
	int n = config_setting_length(s);
	bool ok = true;
	for (int i = 0; i < n; i++) {
		config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
		if (config_setting_type(e) != CONFIG_TYPE_STRING) {
			report(ld, e, key, "entry %d: expected string", i + 1);
			ok = false;
		} else if (!config_setting_get_string(e)[0]) {
			report(ld, e, key, "entry %d: must not be empty", i + 1);
			ok = false;
		}
	}
	if (!ok) {
		mark_bad(s);
		return;
	}
	char **codes = calloc((size_t)n + 1, sizeof(*codes));
	if (!codes) {
		ld->oom = true;
		return;
	}
	for (int i = 0; i < n; i++) {
		codes[i] = xstrdup(ld, config_setting_get_string_elem(s, i));
		if (!codes[i])
			break;
	}
	for (size_t i = 0; i < ld->c->sales.n_event_codes; i++)
		free(ld->c->sales.event_codes[i]);
	free(ld->c->sales.event_codes);
	ld->c->sales.event_codes = codes;
	ld->c->sales.n_event_codes = ld->oom ? 0 : (size_t)n;
}

static void walk_group(struct loader *ld, config_setting_t *grp, const struct spec *specs,
                       const char *prefix);

static void apply(struct loader *ld, config_setting_t *s, const struct spec *sp, const char *key)
{
	int type = config_setting_type(s);
	switch (sp->kind) {
	case K_GROUP:
		if (type != CONFIG_TYPE_GROUP)
			report(ld, s, key, "expected group");
		else
			walk_group(ld, s, sp->members, key);
		return;
	case K_STRING:
	case K_LEVEL:
	case K_METHOD:
	case K_KEY_SOURCE:
		if (type != CONFIG_TYPE_STRING)
			report(ld, s, key, "expected string");
		else
			apply_string(ld, s, sp, key);
		return;
	case K_INT:
	case K_INT64: {
		long long v;
		if (type != CONFIG_TYPE_INT && type != CONFIG_TYPE_INT64) {
			report(ld, s, key, "expected integer");
		} else if (setting_integer(ld, s, &v) < 0) {
			report(ld, s, key, "integer out of range");
		} else if (v < sp->min || v > sp->max) {
			report(ld, s, key, "must be between %lld and %lld (is %lld)", sp->min,
			       sp->max, v);
		} else if (sp->kind == K_INT) {
			*(int *)field(ld, sp) = (int)v;
		} else {
			*(long long *)field(ld, sp) = v;
		}
		return;
	}
	case K_BOOL:
		if (type != CONFIG_TYPE_BOOL)
			report(ld, s, key, "expected boolean (true or false)");
		else
			*(bool *)field(ld, sp) = config_setting_get_bool(s);
		return;
	case K_CODES:
		apply_codes(ld, s, key);
		return;
	}
}

static void walk_group(struct loader *ld, config_setting_t *grp, const struct spec *specs,
                       const char *prefix)
{
	int n = config_setting_length(grp);
	for (int i = 0; i < n && !ld->oom; i++) {
		config_setting_t *s = config_setting_get_elem(grp, (unsigned)i);
		const char *name = config_setting_name(s);
		char key[512];
		snprintf(key, sizeof(key), "%s%s%s", prefix, prefix[0] ? "." : "", name);
		const struct spec *sp = find_spec(specs, name);
		if (sp)
			apply(ld, s, sp, key);
		else
			report_unknown(ld, s, key, specs);
	}
}

/* ---- defaults and checks across keys ---- */

/* Under systemd, StateDirectory= sets $STATE_DIRECTORY (several directories
 * are separated by ':'; the first is ours). It replaces the built-in default
 * of state_dir, so each instance of the template unit gets its own
 * directory; a state_dir in the file still wins. */
static void default_state_dir_from_systemd(struct loader *ld)
{
	const char *e = getenv("STATE_DIRECTORY");
	if (!e || e[0] != '/')
		return;
	size_t n = strcspn(e, ":");
	char *dir = strndup(e, n);
	if (!dir) {
		ld->oom = true;
		return;
	}
	free(ld->c->state_dir);
	ld->c->state_dir = dir;
}

static void set_defaults(struct loader *ld, const struct spec *specs)
{
	for (const struct spec *sp = specs; sp->name; sp++) {
		switch (sp->kind) {
		case K_GROUP:
			set_defaults(ld, sp->members);
			break;
		case K_STRING:
			if (sp->def)
				set_string(ld, (char **)field(ld, sp), sp->def);
			break;
		case K_LEVEL:
			*(int *)field(ld, sp) = log_level_parse(sp->def);
			break;
		case K_METHOD:
			*(enum config_insert_method *)field(ld, sp) = CONFIG_INSERT_STREAMING;
			break;
		case K_INT:
			*(int *)field(ld, sp) = (int)sp->idef;
			break;
		case K_INT64:
			*(long long *)field(ld, sp) = sp->idef;
			break;
		case K_BOOL:
			*(bool *)field(ld, sp) = sp->idef != 0;
			break;
		case K_KEY_SOURCE:
		case K_CODES:
			break;
		}
	}
}

static config_setting_t *group_setting(struct loader *ld, const char *name)
{
	return config_setting_get_member(config_root_setting(&ld->cfg), name);
}

/* True if the group is usable: absent (all defaults) or a group without a type problem. */
static bool group_ok(struct loader *ld, const char *name)
{
	config_setting_t *g = group_setting(ld, name);
	return !g || !is_bad(g);
}

/* A missing required key is reported on the line of its group, the place to
 * add it; when the group is missing too, on line 1 (see report()). */
static void check_required(struct loader *ld)
{
	for (const struct spec *g = top_keys; g->name; g++) {
		if (g->kind != K_GROUP || !group_ok(ld, g->name))
			continue;
		config_setting_t *gs = group_setting(ld, g->name);
		for (const struct spec *sp = g->members; sp->name; sp++) {
			if (!(sp->flags & F_REQUIRED) ||
			    (gs && config_setting_get_member(gs, sp->name)))
				continue;
			char key[128];
			snprintf(key, sizeof(key), "%s.%s", g->name, sp->name);
			report(ld, gs, key, "required key is missing");
		}
	}
	if (ld->n_key_sources == 0 && group_ok(ld, "seetickets"))
		report(ld, group_setting(ld, "seetickets"), "seetickets",
		       "one of api_key_secret, api_key_file or api_key_credential is required");
}

static config_setting_t *member_ok(struct loader *ld, const char *group, const char *name, bool *ok)
{
	config_setting_t *g = group_setting(ld, group);
	config_setting_t *s = g ? config_setting_get_member(g, name) : NULL;
	if ((g && is_bad(g)) || is_bad(s))
		*ok = false;
	return s;
}

/* With track_changes a feed owns TABLE_changes and TABLE_current too: they
 * must be valid table ids and not be the other feed's tables. */
static void check_tracked_names(struct loader *ld, const char *feed, const struct config_feed *f,
                                config_setting_t *where, const struct config_feed *other)
{
	char key[32];
	snprintf(key, sizeof(key), "%s.table", feed);
	if (!f->track_changes)
		return;
	if (!where)
		where = group_setting(ld, feed);
	if (strlen(f->table) + strlen(CONFIG_CHANGES_SUFFIX) > BQ_NAME_MAX) {
		report(ld, where, key,
		       "too long for track_changes (its _changes table needs %zu more)",
		       strlen(CONFIG_CHANGES_SUFFIX));
		return;
	}
	const char *sfx[] = {CONFIG_CHANGES_SUFFIX, CONFIG_CURRENT_SUFFIX};
	for (size_t i = 0; i < 2; i++) {
		size_t n = strlen(f->table);
		/* Two tracked feeds' derived names cannot meet: the suffixes end apart. */
		bool clash = strncmp(other->table, f->table, n) == 0 &&
		             strcmp(other->table + n, sfx[i]) == 0;
		if (clash) {
			report(ld, where, key,
			       "with track_changes, %s%s would be the other feed's table", f->table,
			       sfx[i]);
			return;
		}
	}
}

static void check_feeds(struct loader *ld)
{
	struct config *c = ld->c;
	bool ok = true;
	config_setting_t *sales_table = member_ok(ld, "sales", "table", &ok);
	config_setting_t *events_table = member_ok(ld, "events", "table", &ok);
	if (ok && strcmp(c->sales.feed.table, c->events.feed.table) == 0) {
		if (events_table)
			report(ld, events_table, "events.table", "must differ from sales.table");
		else
			report(ld, sales_table, "sales.table", "must differ from events.table");
	} else if (ok) {
		check_tracked_names(ld, "sales", &c->sales.feed, sales_table, &c->events.feed);
		check_tracked_names(ld, "events", &c->events.feed, events_table, &c->sales.feed);
	}

	ok = true;
	member_ok(ld, "sales", "enabled", &ok);
	config_setting_t *events_enabled = member_ok(ld, "events", "enabled", &ok);
	if (ok && !c->sales.feed.enabled && !c->events.feed.enabled)
		report(ld, events_enabled, "events.enabled",
		       "at least one of sales.enabled and events.enabled must be true");

	ok = true;
	config_setting_t *codes = member_ok(ld, "sales", "event_codes", &ok);
	if (ok && c->sales.feed.enabled && !c->events.feed.enabled && c->sales.n_event_codes == 0)
		report(ld, codes ? codes : group_setting(ld, "sales"), "sales.event_codes",
		       "required when events are disabled");
}

/* ---- entry points ---- */

void config_free(struct config *c)
{
	if (!c)
		return;
	free(c->path);
	free(c->state_dir);
	free(c->metrics_file);
	free(c->seetickets.base_url);
	free(c->seetickets.key_ref);
	free(c->google.credentials);
	free(c->google.bigquery_endpoint);
	free(c->google.secretmanager_endpoint);
	free(c->google.metadata_host);
	free(c->google.ca_file);
	free(c->bigquery.project);
	free(c->bigquery.dataset);
	free(c->bigquery.location);
	free(c->sales.feed.table);
	if (c->sales.event_codes)
		for (size_t i = 0; c->sales.event_codes[i]; i++)
			free(c->sales.event_codes[i]);
	free(c->sales.event_codes);
	free(c->events.feed.table);
	free(c);
}

static void loader_done(struct loader *ld)
{
	for (size_t i = 0; i < ld->n_problems; i++) {
		free(ld->problems[i].file);
		free(ld->problems[i].text);
	}
	free(ld->problems);
	for (size_t i = 0; i < ld->n_sources; i++) {
		free(ld->sources[i].name);
		free(ld->sources[i].text);
	}
	free(ld->sources);
	config_destroy(&ld->cfg);
	free(ld->include_dir);
}

static int set_errors(char **errors, struct buf *b)
{
	if (!errors) {
		buf_free(b);
		return 0;
	}
	*errors = buf_steal(b);
	return *errors ? 0 : -ENOMEM;
}

/* A file that cannot be opened is reported with its errno before libconfig
 * sees it: libconfig only says "file I/O error". */
static int check_readable(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	struct stat st;
	int r = fstat(fd, &st) < 0 ? -errno : S_ISDIR(st.st_mode) ? -EISDIR : 0;
	close(fd);
	return r;
}

/* libconfig 1.5 calls exit(2) from its scanner when an @include names a
 * directory (or anything else it cannot read as a stream), which would end a
 * running daemon on a bad reload. So every @include, nested ones too, is
 * checked first: it must name a readable regular file. */
#define CONFIG_MAX_INCLUDE_DEPTH 10 /* libconfig's own limit */
#define CONFIG_MAX_INCLUDES      64 /* @include directives in all the files together */

/* The files on the way to the one being checked, and the @includes seen: a
 * file that includes itself, directly or not, would make libconfig read it
 * again at every level up to its depth limit, a fan-out of a few includes
 * per file growing into minutes of parsing on a reload. */
struct include_walk {
	dev_t dev[CONFIG_MAX_INCLUDE_DEPTH + 1];
	ino_t ino[CONFIG_MAX_INCLUDE_DEPTH + 1];
	unsigned total;
};

static int check_includes_in(const char *file, const char *include_dir, int depth,
                             struct include_walk *w, struct buf *eb);

static int check_includes(const char *file, const char *include_dir, int depth, struct buf *eb)
{
	struct include_walk w = {0};
	return check_includes_in(file, include_dir, depth, &w, eb);
}

static int check_includes_in(const char *file, const char *include_dir, int depth,
                             struct include_walk *w, struct buf *eb)
{
	FILE *in = fopen(file, "re");
	if (!in)
		return 0; /* libconfig reports an unreadable file itself */
	struct stat self;
	if (fstat(fileno(in), &self) == 0 && depth <= CONFIG_MAX_INCLUDE_DEPTH) {
		w->dev[depth] = self.st_dev;
		w->ino[depth] = self.st_ino;
	}
	char *line = NULL;
	size_t cap = 0;
	unsigned lineno = 0;
	int bad = 0;
	ssize_t got;
	while ((got = getline(&line, &cap, in)) > 0) {
		lineno++;
		/* libconfig's scanner reads a NUL as the end of a name: an @include
		 * of "" opens the directory, and reading that stream makes flex
		 * call exit(). No text configuration holds a NUL. */
		if (memchr(line, '\0', (size_t)got)) {
			if (buf_printf(eb, "%s:%u: the file holds a NUL byte\n", file, lineno) < 0)
				bad = -ENOMEM;
			else
				bad = bad ? bad : -EINVAL;
			continue;
		}
		const char *p = line + strspn(line, " \t");
		if (strncmp(p, "@include", 8) != 0)
			continue;
		p += 8;
		p += strspn(p, " \t");
		if (*p != '"')
			continue; /* a syntax error libconfig reports with its line */
		const char *name = ++p;
		while (*p && *p != '"' && *p != '\n' && *p != '\r')
			p += (*p == '\\' && p[1] && p[1] != '\n') ? 2 : 1;
		if (*p != '"')
			continue; /* unterminated: libconfig reports the syntax error */
		bool printable = true;
		for (const char *q = name; q < p; q++)
			printable = printable && (unsigned char)*q >= 0x20 && *q != 0x7f;
		if (!printable)
			continue; /* no such file name can be written in libconfig syntax */
		char *target = NULL;
		int n = include_dir
		                ? asprintf(&target, "%s/%.*s", include_dir, (int)(p - name), name)
		                : asprintf(&target, "%.*s", (int)(p - name), name);
		if (n < 0) {
			bad = -ENOMEM;
			break;
		}
		struct stat st;
		const char *why = NULL;
		if (stat(target, &st) < 0)
			why = strerror(errno);
		else if (!S_ISREG(st.st_mode))
			why = "not a regular file";
		else if (access(target, R_OK) < 0)
			why = strerror(errno);
		else if (depth + 1 >= CONFIG_MAX_INCLUDE_DEPTH)
			why = "includes nested too deeply";
		else if (++w->total > CONFIG_MAX_INCLUDES)
			why = "too many @include directives";
		for (int k = 0; !why && k <= depth; k++)
			if (w->dev[k] == st.st_dev && w->ino[k] == st.st_ino)
				why = "includes itself";
		if (why) {
			if (buf_printf(eb, "%s:%u: @include: \"%.*s\": %s\n", file, lineno,
			               (int)(p - name), name, why) < 0)
				bad = -ENOMEM;
			else
				bad = bad ? bad : -EINVAL;
		} else {
			int r = check_includes_in(target, include_dir, depth + 1, w, eb);
			if (r < 0 && !bad)
				bad = r;
		}
		free(target);
	}
	free(line);
	fclose(in);
	return bad;
}

int config_load(const char *path, struct config **out, char **errors)
{
	struct buf eb = {0};
	*out = NULL;
	if (errors)
		*errors = NULL;

	int r = check_readable(path);
	if (r < 0) {
		if (buf_printf(&eb, "%s: cannot read: %s\n", path, strerror(-r)) < 0 ||
		    set_errors(errors, &eb) < 0)
			return -ENOMEM;
		return r;
	}

	struct loader ld = {.path = path};
	config_init(&ld.cfg);
	/* @include names are taken from the file's own directory, so the daemon
	 * and a --check-config run from anywhere read the same files. libconfig
	 * 1.5 prefixes the include directory to every @include name, absolute
	 * ones too: an include is always written relative to this file. */
	const char *slash = strrchr(path, '/');
	if (slash) {
		ld.include_dir = strndup(path, slash == path ? 1 : (size_t)(slash - path));
		if (!ld.include_dir) {
			loader_done(&ld);
			return -ENOMEM;
		}
		config_set_include_dir(&ld.cfg, ld.include_dir);
	}

	r = check_includes(path, ld.include_dir, 0, &eb);
	if (r < 0) {
		loader_done(&ld);
		if (r == -ENOMEM || set_errors(errors, &eb) < 0)
			return -ENOMEM;
		return r;
	}

	if (!config_read_file(&ld.cfg, path)) {
		bool io = config_error_type(&ld.cfg) == CONFIG_ERR_FILE_IO;
		char *file = file_name(&ld, config_error_file(&ld.cfg));
		if (!file)
			r = -ENOMEM;
		else if (io)
			r = buf_printf(&eb, "%s: cannot read: %s\n", path, strerror(EIO));
		else
			r = buf_printf(&eb, "%s:%d: syntax: %s\n", file, config_error_line(&ld.cfg),
			               config_error_text(&ld.cfg));
		free(file);
		loader_done(&ld);
		if (r < 0 || set_errors(errors, &eb) < 0)
			return -ENOMEM;
		return io ? -EIO : -EINVAL;
	}

	ld.c = calloc(1, sizeof(*ld.c));
	if (!ld.c) {
		loader_done(&ld);
		return -ENOMEM;
	}
	ld.c->path = xstrdup(&ld, path);
	set_defaults(&ld, top_keys);
	default_state_dir_from_systemd(&ld);
	ld.c->sales.event_codes = calloc(1, sizeof(char *));
	if (!ld.c->sales.event_codes)
		ld.oom = true;
	if (!ld.oom)
		walk_group(&ld, config_root_setting(&ld.cfg), top_keys, "");
	if (!ld.oom) {
		check_required(&ld);
		check_feeds(&ld);
	}
	if (ld.oom) {
		config_free(ld.c);
		loader_done(&ld);
		return -ENOMEM;
	}
	if (ld.n_problems == 0) {
		*out = ld.c;
		loader_done(&ld);
		return 0;
	}

	sort_problems(&ld);
	for (size_t i = 0; i < ld.n_problems; i++)
		if (buf_printf(&eb, "%s:%u: %s\n", ld.problems[i].file, ld.problems[i].line,
		               ld.problems[i].text) < 0)
			ld.oom = true;
	config_free(ld.c);
	loader_done(&ld);
	if (ld.oom || set_errors(errors, &eb) < 0)
		return -ENOMEM;
	return -EINVAL;
}
