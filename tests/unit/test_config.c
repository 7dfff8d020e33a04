/* Unit tests for config.c: defaults, every key, every problem with its exact line. */
#include "autoconfig.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "tap.h"
#include "util.h"

static char tmpdir[256];
static char conf_path[512];

/* The smallest valid file. Extra lines go into a group by number so that
 * the expected line of a problem is known: seetickets line 3, bigquery line
 * 8, any other group line 11, top level line 10. */
#define SEE_LINE   3
#define BQ_LINE    8
#define OTHER_LINE 11
#define TOP_LINE   10

static const char *top_srcdir(void)
{
	const char *t = getenv("TOP_SRCDIR");
	return t && *t ? t : ".";
}

static void write_file(const char *path, const char *content)
{
	FILE *f = fopen(path, "w");
	if (!f) {
		printf("# cannot write %s: %s\n", path, strerror(errno));
		exit(1);
	}
	fputs(content, f);
	fclose(f);
}

static void print_diag(const char *text)
{
	while (text && *text) {
		size_t n = strcspn(text, "\n");
		printf("#   | %.*s\n", (int)n, text);
		text += n + (text[n] == '\n');
	}
}

/* Load `content` from a temporary file; errors and return code handed back. */
static struct config *load(const char *content, int *rc, char **errors)
{
	struct config *c = (struct config *)(uintptr_t)1;
	write_file(conf_path, content);
	*rc = config_load(conf_path, &c, errors);
	return c;
}

static struct config *load_ok(const char *content)
{
	int rc;
	char *errors = NULL;
	struct config *c = load(content, &rc, &errors);
	CHECK_INT(rc, 0);
	CHECK(c != NULL);
	CHECK(errors == NULL);
	if (rc != 0) {
		print_diag(content);
		printf("# errors:\n");
		print_diag(errors);
	}
	free(errors);
	return c;
}

/* `expected` lists every problem as "LINE: key: problem\n", without the file name. */
static void expect_errors(const char *content, const char *expected)
{
	int rc;
	char *errors = NULL;
	struct config *c = load(content, &rc, &errors);
	CHECK_INT(rc, -EINVAL);
	CHECK(c == NULL);
	struct buf want = {0};
	for (const char *p = expected; *p;) {
		size_t n = strcspn(p, "\n");
		buf_printf(&want, "%s:%.*s\n", conf_path, (int)n, p);
		p += n + (p[n] == '\n');
	}
	CHECK_STR(errors, want.data);
	if (!errors || strcmp(errors, want.data) != 0) {
		printf("# file:\n");
		print_diag(content);
	}
	buf_free(&want);
	free(errors);
	config_free(c);
}

/* A minimal file with `extra` inserted into `group` (NULL: top level). */
static char *with(const char *group, const char *extra)
{
	struct buf b = {0};
	bool see = group && strcmp(group, "seetickets") == 0;
	bool bq = group && strcmp(group, "bigquery") == 0;
	buf_printf(&b,
	           "seetickets = {\n"
	           "  api_key_file = \"/etc/seetickets-bq/api-key\";\n"
	           "  %s\n"
	           "};\n"
	           "bigquery = {\n"
	           "  project = \"my-project\";\n"
	           "  dataset = \"seetickets_data\";\n"
	           "  %s\n"
	           "};\n",
	           see ? extra : "", bq ? extra : "");
	if (!group)
		buf_printf(&b, "%s\n", extra);
	else if (!see && !bq)
		buf_printf(&b, "%s = {\n  %s\n};\n", group, extra);
	return buf_steal(&b);
}

static int line_of(const char *group)
{
	if (!group)
		return TOP_LINE;
	if (strcmp(group, "seetickets") == 0)
		return SEE_LINE;
	if (strcmp(group, "bigquery") == 0)
		return BQ_LINE;
	return OTHER_LINE;
}

/* One problem expected, for `extra` placed in `group`: "key: problem". */
static void expect_one(const char *group, const char *extra, const char *problem)
{
	char *content = with(group, extra);
	char want[1024];
	snprintf(want, sizeof(want), "%d: %s", line_of(group), problem);
	expect_errors(content, want);
	free(content);
}

static struct config *load_with(const char *group, const char *extra)
{
	char *content = with(group, extra);
	struct config *c = load_ok(content);
	free(content);
	return c;
}

static void test_minimal_file_gets_every_default(void)
{
	struct config *c =
	        load_ok("seetickets = { api_key_secret = \"projects/p-1/secrets/k\"; };\n"
	                "bigquery = { project = \"my-project\"; dataset = \"d\"; };\n");
	if (!c)
		return;
	CHECK_STR(c->path, conf_path);
	CHECK_INT(c->log_level, LOG_INFO);
	CHECK_STR(c->state_dir, "/var/lib/seetickets-bq");
	CHECK_STR(c->metrics_file, "");
	CHECK_STR(c->seetickets.base_url, "https://clients-api.seetickets.com/v1");
	CHECK_INT(c->seetickets.key_source, CONFIG_KEY_SECRET);
	CHECK_STR(c->seetickets.key_ref, "projects/p-1/secrets/k/versions/latest");
	CHECK_INT(c->seetickets.page_size, 100);
	CHECK_INT(c->seetickets.timeout, 30);
	CHECK_INT(c->seetickets.max_response_bytes, 8388608);
	CHECK_STR(c->google.credentials, "auto");
	CHECK_STR(c->google.bigquery_endpoint, "https://bigquery.googleapis.com");
	CHECK_STR(c->google.secretmanager_endpoint, "https://secretmanager.googleapis.com");
	CHECK_STR(c->google.metadata_host, "metadata.google.internal");
	CHECK_STR(c->google.ca_file, "");
	CHECK_STR(c->bigquery.project, "my-project");
	CHECK_STR(c->bigquery.dataset, "d");
	CHECK_STR(c->bigquery.location, "EU");
	CHECK_INT(c->bigquery.insert_method, CONFIG_INSERT_STREAMING);
	CHECK_INT(c->bigquery.batch_rows, 500);
	CHECK_INT(c->bigquery.batch_bytes, 9000000);
	CHECK_INT(c->bigquery.create_tables, true);
	CHECK_INT(c->sales.feed.enabled, true);
	CHECK_STR(c->sales.feed.table, "sales");
	CHECK_INT(c->sales.feed.interval, 300);
	CHECK(c->sales.event_codes != NULL);
	if (c->sales.event_codes)
		CHECK(c->sales.event_codes[0] == NULL);
	CHECK_INT(c->sales.n_event_codes, 0);
	CHECK_INT(c->sales.event_lookback_days, 30);
	CHECK_INT(c->sales.codes_per_request, 50);
	CHECK_INT(c->sales.date_filter, false);
	CHECK_INT(c->events.feed.enabled, true);
	CHECK_STR(c->events.feed.table, "events");
	CHECK_INT(c->events.feed.interval, 3600);
	config_free(c);
}

static void test_state_directory_from_systemd_replaces_the_default_only(void)
{
	static const char minimal[] =
	        "seetickets = { api_key_secret = \"projects/p-1/secrets/k\"; };\n"
	        "bigquery = { project = \"my-project\"; dataset = \"d\"; };\n";
	setenv("STATE_DIRECTORY", "/var/lib/seetickets-bq/acme:/var/lib/other", 1);
	struct config *c = load_ok(minimal);
	if (c)
		CHECK_STR(c->state_dir, "/var/lib/seetickets-bq/acme");
	config_free(c);
	char *content = with(NULL, "state_dir = \"/srv/stbq\";");
	c = load_ok(content);
	free(content);
	if (c)
		CHECK_STR(c->state_dir, "/srv/stbq");
	config_free(c);
	/* Not an absolute path: not systemd's, ignored. */
	setenv("STATE_DIRECTORY", "relative", 1);
	c = load_ok(minimal);
	if (c)
		CHECK_STR(c->state_dir, "/var/lib/seetickets-bq");
	config_free(c);
	unsetenv("STATE_DIRECTORY");
}

static void test_every_key_is_read(void)
{
	char ca[600];
	snprintf(ca, sizeof(ca), "%s/ca.pem", tmpdir);
	write_file(ca, "not checked here\n");
	char content[4096];
	snprintf(content, sizeof(content),
	         "log_level = \"debug\";\n"
	         "state_dir = \"/srv/stbq\";\n"
	         "metrics_file = \"/var/lib/node/stbq.prom\";\n"
	         "seetickets = {\n"
	         "  base_url = \"http://127.0.0.1:8080/v1\";\n"
	         "  api_key_credential = \"see-key\";\n"
	         "  page_size = 0;\n"
	         "  timeout = 3600;\n"
	         "  max_response_bytes = 4096;\n"
	         "};\n"
	         "google = {\n"
	         "  credentials = \"/etc/stbq/sa.json\";\n"
	         "  bigquery_endpoint = \"http://localhost:9050/\";\n"
	         "  secretmanager_endpoint = \"https://sm.example.com/base\";\n"
	         "  metadata_host = \"127.0.0.1:8888\";\n"
	         "  ca_file = \"%s\";\n"
	         "};\n"
	         "bigquery = {\n"
	         "  project = \"example.com:legacy-proj\";\n"
	         "  dataset = \"Data_Set_1\";\n"
	         "  location = \"europe-west2\";\n"
	         "  insert_method = \"load\";\n"
	         "  batch_rows = 50000;\n"
	         "  batch_bytes = 10000000L;\n"
	         "  create_tables = false;\n"
	         "};\n"
	         "sales = {\n"
	         "  enabled = true;\n"
	         "  table = \"Sales2\";\n"
	         "  interval = 1;\n"
	         "  event_codes = ( \"ABC\", \"sales$2026\" );\n"
	         "  event_lookback_days = 3650;\n"
	         "  codes_per_request = 1000;\n"
	         "  date_filter = true;\n"
	         "};\n"
	         "events = {\n"
	         "  enabled = false;\n"
	         "  table = \"Events_2\";\n"
	         "  interval = 86400;\n"
	         "};\n",
	         ca);
	struct config *c = load_ok(content);
	if (!c)
		return;
	CHECK_INT(c->log_level, LOG_DEBUG);
	CHECK_STR(c->state_dir, "/srv/stbq");
	CHECK_STR(c->metrics_file, "/var/lib/node/stbq.prom");
	CHECK_STR(c->seetickets.base_url, "http://127.0.0.1:8080/v1");
	CHECK_INT(c->seetickets.key_source, CONFIG_KEY_CREDENTIAL);
	CHECK_STR(c->seetickets.key_ref, "see-key");
	CHECK_INT(c->seetickets.page_size, 0);
	CHECK_INT(c->seetickets.timeout, 3600);
	CHECK_INT(c->seetickets.max_response_bytes, 4096);
	CHECK_STR(c->google.credentials, "/etc/stbq/sa.json");
	CHECK_STR(c->google.bigquery_endpoint, "http://localhost:9050");
	CHECK_STR(c->google.secretmanager_endpoint, "https://sm.example.com/base");
	CHECK_STR(c->google.metadata_host, "127.0.0.1:8888");
	CHECK_STR(c->google.ca_file, ca);
	CHECK_STR(c->bigquery.project, "example.com:legacy-proj");
	CHECK_STR(c->bigquery.dataset, "Data_Set_1");
	CHECK_STR(c->bigquery.location, "europe-west2");
	CHECK_INT(c->bigquery.insert_method, CONFIG_INSERT_LOAD);
	CHECK_INT(c->bigquery.batch_rows, 50000);
	CHECK_INT(c->bigquery.batch_bytes, 10000000);
	CHECK_INT(c->bigquery.create_tables, false);
	CHECK_INT(c->sales.feed.enabled, true);
	CHECK_STR(c->sales.feed.table, "Sales2");
	CHECK_INT(c->sales.feed.interval, 1);
	CHECK_INT(c->sales.n_event_codes, 2);
	if (c->sales.n_event_codes == 2) {
		CHECK_STR(c->sales.event_codes[0], "ABC");
		CHECK_STR(c->sales.event_codes[1], "sales$2026");
		CHECK(c->sales.event_codes[2] == NULL);
	}
	CHECK_INT(c->sales.event_lookback_days, 3650);
	CHECK_INT(c->sales.codes_per_request, 1000);
	CHECK_INT(c->sales.date_filter, true);
	CHECK_INT(c->events.feed.enabled, false);
	CHECK_STR(c->events.feed.table, "Events_2");
	CHECK_INT(c->events.feed.interval, 86400);
	config_free(c);
}

static void test_shipped_sample_is_valid(void)
{
	char path[1024];
	snprintf(path, sizeof(path), "%s/etc/seetickets-bq.conf", top_srcdir());
	struct config *c = NULL;
	char *errors = NULL;
	int rc = config_load(path, &c, &errors);
	CHECK_INT(rc, 0);
	print_diag(errors);
	free(errors);
	if (!c)
		return;
	CHECK_STR(c->bigquery.project, "my-project");
	CHECK_STR(c->bigquery.dataset, "seetickets_data");
	CHECK_INT(c->seetickets.key_source, CONFIG_KEY_SECRET);
	CHECK_STR(c->seetickets.key_ref,
	          "projects/PROJECT/secrets/SEE_TICKETS_API_KEY/versions/latest");
	/* Everything else is commented out, so the sample shows the real defaults. */
	CHECK_INT(c->seetickets.page_size, 100);
	CHECK_INT(c->sales.feed.interval, 300);
	CHECK_INT(c->events.feed.interval, 3600);
	config_free(c);
}

static void test_api_key_secret_is_normalised(void)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
	        {"projects/my-project/secrets/KEY",
	         "projects/my-project/secrets/KEY/versions/latest"},
	        {"projects/123456/secrets/see_key/versions/latest",
	         "projects/123456/secrets/see_key/versions/latest"},
	        {"projects/my-project/secrets/KEY/versions/7",
	         "projects/my-project/secrets/KEY/versions/7"},
	        {"projects/example.com:proj/secrets/k-1",
	         "projects/example.com:proj/secrets/k-1/versions/latest"},
	};
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(cases); i++) {
		char content[512];
		snprintf(content, sizeof(content),
		         "seetickets = { api_key_secret = \"%s\"; };\n"
		         "bigquery = { project = \"my-project\"; dataset = \"d\"; };\n",
		         cases[i].in);
		struct config *c = load_ok(content);
		if (!c)
			continue;
		CHECK_INT(c->seetickets.key_source, CONFIG_KEY_SECRET);
		CHECK_STR(c->seetickets.key_ref, cases[i].out);
		config_free(c);
	}
	static const char *const bad[] = {
	        "SEE_TICKETS_API_KEY",
	        "projects/p/secrets",
	        "projects/p/secrets/",
	        "projects//secrets/k",
	        "projects/p/secret/k",
	        "projects/p/secrets/k/versions",
	        "projects/p/secrets/k/versions/",
	        "projects/p/secrets/k/versions/1/x",
	        "/projects/p/secrets/k",
	        "projects/p/secrets/k/",
	        "projects/p/secrets/k k",
	};
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(bad); i++) {
		char content[512];
		snprintf(content, sizeof(content),
		         "seetickets = {\n  api_key_secret = \"%s\";\n};\n"
		         "bigquery = { project = \"my-project\"; dataset = \"d\"; };\n",
		         bad[i]);
		expect_errors(content, "2: seetickets.api_key_secret: must be "
		                       "projects/PROJECT/secrets/NAME or "
		                       "projects/PROJECT/secrets/NAME/versions/VERSION");
	}
}

static void test_api_key_file_and_credential(void)
{
	struct config *c = load_with(NULL, "");
	if (c) {
		CHECK_INT(c->seetickets.key_source, CONFIG_KEY_FILE);
		CHECK_STR(c->seetickets.key_ref, "/etc/seetickets-bq/api-key");
		config_free(c);
	}
	const char *tail = "bigquery = { project = \"my-project\"; dataset = \"d\"; };\n";
	char content[512];
	snprintf(content, sizeof(content), "seetickets = {\n  api_key_file = \"api-key\";\n};\n%s",
	         tail);
	expect_errors(content, "2: seetickets.api_key_file: must be an absolute path");
	snprintf(content, sizeof(content),
	         "seetickets = {\n  api_key_credential = \"dir/key\";\n};\n%s", tail);
	expect_errors(content,
	              "2: seetickets.api_key_credential: must be a plain file name (no '/')");
	snprintf(content, sizeof(content), "seetickets = {\n  api_key_credential = \"..\";\n};\n%s",
	         tail);
	expect_errors(content,
	              "2: seetickets.api_key_credential: must be a plain file name (no '/')");
	snprintf(content, sizeof(content), "seetickets = {\n  api_key_credential = \"\";\n};\n%s",
	         tail);
	expect_errors(content, "2: seetickets.api_key_credential: must not be empty");
}

static void test_exactly_one_api_key_source(void)
{
	const char *tail = "bigquery = { project = \"my-project\"; dataset = \"d\"; };\n";
	char content[1024];
	snprintf(content, sizeof(content), "# no key\n\nseetickets = {\n  page_size = 10;\n};\n%s",
	         tail);
	expect_errors(content, "3: seetickets: one of api_key_secret, api_key_file or "
	                       "api_key_credential is required");
	/* No seetickets group at all: line 1. */
	expect_errors(tail, "1: seetickets: one of api_key_secret, api_key_file or "
	                    "api_key_credential is required");
	snprintf(content, sizeof(content),
	         "seetickets = {\n"
	         "  api_key_credential = \"k\";\n"
	         "  api_key_secret = \"projects/p/secrets/k\";\n"
	         "  page_size = 10;\n"
	         "  api_key_file = \"/k\";\n"
	         "};\n%s",
	         tail);
	expect_errors(content, "3: seetickets.api_key_secret: only one of api_key_secret, "
	                       "api_key_file or api_key_credential may be set\n"
	                       "5: seetickets.api_key_file: only one of api_key_secret, "
	                       "api_key_file or api_key_credential may be set");
}

static void test_unknown_keys_are_errors(void)
{
	expect_one(NULL, "log_levle = \"info\";",
	           "log_levle: unknown key (did you mean log_level?)");
	expect_one(NULL, "colour = \"blue\";", "colour: unknown key");
	expect_one("seetickets", "pagesize = 10;",
	           "seetickets.pagesize: unknown key (did you mean page_size?)");
	expect_one("sales", "tabel = \"x\";", "sales.tabel: unknown key (did you mean table?)");
	expect_one("google", "project = \"x\";",
	           "google.project: unknown key (did you mean bigquery.project?)");
	expect_one(NULL, "project = \"x\";",
	           "project: unknown key (did you mean bigquery.project?)");
	expect_one(NULL, "bigqeury = { project = \"x\"; };",
	           "bigqeury: unknown key (did you mean bigquery?)");
	/* The inside of an unknown group is not reported key by key. */
	expect_one(NULL, "extra = { a = 1; b = 2; };", "extra: unknown key");
	expect_one("events", "nested = { enabled = true; };", "events.nested: unknown key");
}

static void test_wrong_types_are_errors(void)
{
	expect_one(NULL, "log_level = 7;", "log_level: expected string");
	expect_one(NULL, "state_dir = { };", "state_dir: expected string");
	expect_one(NULL, "metrics_file = [ \"/x\" ];", "metrics_file: expected string");
	expect_one(NULL, "google = \"auto\";", "google: expected group");
	expect_one(NULL, "sales = ( 1, 2 );", "sales: expected group");
	expect_one("seetickets", "page_size = \"100\";", "seetickets.page_size: expected integer");
	expect_one("seetickets", "timeout = 1.5;", "seetickets.timeout: expected integer");
	expect_one("seetickets", "max_response_bytes = true;",
	           "seetickets.max_response_bytes: expected integer");
	expect_one("bigquery", "create_tables = \"true\";",
	           "bigquery.create_tables: expected boolean (true or false)");
	expect_one("bigquery", "create_tables = 1;",
	           "bigquery.create_tables: expected boolean (true or false)");
	expect_one("bigquery", "insert_method = { };", "bigquery.insert_method: expected string");
	expect_one("sales", "event_codes = \"ABC\";",
	           "sales.event_codes: expected list of strings");
	expect_one("sales", "event_codes = { a = \"ABC\"; };",
	           "sales.event_codes: expected list of strings");
	expect_one("sales", "event_codes = [ 1, 2 ];",
	           "sales.event_codes: entry 1: expected string\n11: sales.event_codes: entry 2: "
	           "expected string");
	expect_one("sales", "event_codes = ( \"A\", \"\", 5 );",
	           "sales.event_codes: entry 2: must not be empty\n11: sales.event_codes: entry 3: "
	           "expected string");
	/* A source of the wrong type is not counted as a second source. */
	expect_one("seetickets", "api_key_secret = 5;",
	           "seetickets.api_key_secret: expected string");
}

static void test_integers_and_int64(void)
{
	struct config *c = load_with("seetickets", "page_size = 50L; max_response_bytes = 8192;");
	if (c) {
		CHECK_INT(c->seetickets.page_size, 50);
		CHECK_INT(c->seetickets.max_response_bytes, 8192);
		config_free(c);
	}
	c = load_with("bigquery", "batch_rows = 0x10; batch_bytes = 0x400;");
	if (c) {
		CHECK_INT(c->bigquery.batch_rows, 16);
		CHECK_INT(c->bigquery.batch_bytes, 1024);
		config_free(c);
	}
	c = load_with("seetickets", "max_response_bytes = 1073741824L;");
	if (c) {
		CHECK_INT(c->seetickets.max_response_bytes, 1073741824LL);
		config_free(c);
	}
	/* libconfig 1.5 would store these truncated to 32 bits: 100 and 1024. */
	expect_one("seetickets", "page_size = 4294967396;",
	           "seetickets.page_size: must be between 0 and 10000 (is 4294967396)");
	expect_one("bigquery", "batch_bytes = 4294968320;",
	           "bigquery.batch_bytes: must be between 1024 and 10000000 (is 4294968320)");
	expect_one("seetickets", "max_response_bytes = 0x100001000;",
	           "seetickets.max_response_bytes: must be between 4096 and 1073741824 (is "
	           "4294971392)");
	expect_one("seetickets", "timeout = 99999999999999999999;",
	           "seetickets.timeout: integer out of range");
	expect_one("seetickets", "timeout = 3601L;",
	           "seetickets.timeout: must be between 1 and 3600 (is 3601)");
	expect_one("seetickets", "timeout = -5;",
	           "seetickets.timeout: must be between 1 and 3600 (is -5)");
	expect_one("seetickets", "max_response_bytes = 4294967296L;",
	           "seetickets.max_response_bytes: must be between 4096 and 1073741824 (is "
	           "4294967296)");
}

static void test_integer_ranges(void)
{
	static const struct {
		const char *group, *key;
		long long min, max;
	} keys[] = {
	        {"seetickets", "page_size", 0, 10000},
	        {"seetickets", "timeout", 1, 3600},
	        {"seetickets", "max_response_bytes", 4096, 1073741824},
	        {"bigquery", "batch_rows", 1, 50000},
	        {"bigquery", "batch_bytes", 1024, 10000000},
	        {"sales", "interval", 1, 86400},
	        {"sales", "event_lookback_days", 0, 3650},
	        {"sales", "codes_per_request", 1, 1000},
	        {"events", "interval", 1, 86400},
	};
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(keys); i++) {
		char extra[128], problem[256];
		long long edges[] = {keys[i].min, keys[i].max};
		for (size_t e = 0; e < 2; e++) {
			snprintf(extra, sizeof(extra), "%s = %lld;", keys[i].key, edges[e]);
			config_free(load_with(keys[i].group, extra));
		}
		long long outside[] = {keys[i].min - 1, keys[i].max + 1};
		for (size_t e = 0; e < 2; e++) {
			snprintf(extra, sizeof(extra), "%s = %lld;", keys[i].key, outside[e]);
			snprintf(problem, sizeof(problem),
			         "%s.%s: must be between %lld and %lld (is %lld)", keys[i].group,
			         keys[i].key, keys[i].min, keys[i].max, outside[e]);
			expect_one(keys[i].group, extra, problem);
		}
	}
}

static void test_string_values_are_checked(void)
{
	expect_one(NULL, "log_level = \"verbose\";",
	           "log_level: must be one of debug, info, notice, warning, error");
	expect_one(NULL, "log_level = \"INFO\";",
	           "log_level: must be one of debug, info, notice, warning, error");
	expect_one(NULL, "state_dir = \"var/lib/x\";", "state_dir: must be an absolute path");
	expect_one(NULL, "state_dir = \"\";", "state_dir: must be an absolute path");
	expect_one(NULL, "metrics_file = \"m.prom\";",
	           "metrics_file: must be empty or an absolute path");
	expect_one("seetickets", "base_url = \"http://clients-api.seetickets.com/v1\";",
	           "seetickets.base_url: must be https:// (plain http only for loopback hosts)");
	expect_one("seetickets", "base_url = \"clients-api.seetickets.com\";",
	           "seetickets.base_url: must be https:// (plain http only for loopback hosts)");
	expect_one(
	        "google", "bigquery_endpoint = \"http://10.0.0.1\";",
	        "google.bigquery_endpoint: must be https:// (plain http only for loopback hosts)");
	expect_one("google", "secretmanager_endpoint = \"https://\";",
	           "google.secretmanager_endpoint: must be https:// (plain http only for loopback "
	           "hosts)");
	expect_one("google", "credentials = \"adc\";",
	           "google.credentials: must be \"auto\", \"metadata\" or an absolute path");
	static const char *const hosts_bad[] = {
	        "http://metadata", "metadata/x", "",      "host:", "host:0",
	        "host:65536",      "[::1",       "[]:80", "a b"};
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(hosts_bad); i++) {
		char extra[128];
		snprintf(extra, sizeof(extra), "metadata_host = \"%s\";", hosts_bad[i]);
		expect_one("google", extra,
		           "google.metadata_host: must be HOST or HOST:PORT (no scheme, no '/')");
	}
	static const char *const hosts_ok[] = {"metadata.google.internal", "169.254.169.254",
	                                       "localhost:8080", "[::1]:9", "[fd00::1]"};
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(hosts_ok); i++) {
		char extra[128];
		snprintf(extra, sizeof(extra), "metadata_host = \"%s\";", hosts_ok[i]);
		struct config *c = load_with("google", extra);
		if (c)
			CHECK_STR(c->google.metadata_host, hosts_ok[i]);
		config_free(c);
	}
	char extra[1024], pem[300];
	snprintf(extra, sizeof(extra), "ca_file = \"%s/missing.pem\";", tmpdir);
	expect_one("google", extra, "google.ca_file: cannot read: No such file or directory");
	snprintf(extra, sizeof(extra), "ca_file = \"%s\";", tmpdir);
	expect_one("google", extra, "google.ca_file: cannot read: Is a directory");
	if (geteuid() != 0) {
		snprintf(pem, sizeof(pem), "%s/secret.pem", tmpdir);
		write_file(pem, "x");
		chmod(pem, 0);
		snprintf(extra, sizeof(extra), "ca_file = \"%s\";", pem);
		expect_one("google", extra, "google.ca_file: cannot read: Permission denied");
	}
	expect_one("bigquery", "location = \"\";", "bigquery.location: must not be empty");
	expect_one("bigquery", "insert_method = \"batch\";",
	           "bigquery.insert_method: must be \"streaming\" or \"load\"");
	expect_one("sales", "table = \"my-sales\";",
	           "sales.table: must be 1 to 1024 letters, digits or underscores");
	expect_one("events", "table = \"\";",
	           "events.table: must be 1 to 1024 letters, digits or underscores");
}

static void test_trailing_slash_is_stripped_from_endpoints(void)
{
	struct config *c = load_with("google", "bigquery_endpoint = \"https://bq.example.com/\";\n"
	                                       "secretmanager_endpoint = \"http://[::1]:9/sm/\";");
	if (!c)
		return;
	CHECK_STR(c->google.bigquery_endpoint, "https://bq.example.com");
	CHECK_STR(c->google.secretmanager_endpoint, "http://[::1]:9/sm");
	config_free(c);
}

static void test_project_and_dataset_syntax(void)
{
	static const char *const good[] = {
	        "my-project",          "abcdef",      "a12345", "abcdefghijklmnopqrstuvwxyz0123",
	        "example.com:my-proj", "google.com:x"};
	static const char *const bad[] = {"my-pr",          "abcdefghijklmnopqrstuvwxyz01234",
	                                  "My-project",     "1project",
	                                  "my_project",     "my-project-",
	                                  "-myproject",     "my project",
	                                  "example:proj",   ".com:proj",
	                                  "example.com:",   "example.com:Proj",
	                                  "example.com:1p", ""};
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(good); i++) {
		char content[512];
		snprintf(content, sizeof(content),
		         "seetickets = { api_key_file = \"/k\"; };\n"
		         "bigquery = { project = \"%s\"; dataset = \"d\"; };\n",
		         good[i]);
		struct config *c = load_ok(content);
		if (c)
			CHECK_STR(c->bigquery.project, good[i]);
		config_free(c);
	}
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(bad); i++) {
		char content[512];
		snprintf(content, sizeof(content),
		         "seetickets = { api_key_file = \"/k\"; };\n"
		         "bigquery = {\n  project = \"%s\";\n  dataset = \"d\";\n};\n",
		         bad[i]);
		expect_errors(content,
		              "3: bigquery.project: must be a Google Cloud project id (6-30 "
		              "lowercase letters, digits or '-', starting with a letter)");
	}
	char big[1100];
	memset(big, 'a', 1024);
	big[1024] = '\0';
	char content[1400];
	snprintf(content, sizeof(content),
	         "seetickets = { api_key_file = \"/k\"; };\n"
	         "bigquery = { project = \"my-project\"; dataset = \"%s\"; };\n",
	         big);
	config_free(load_ok(content));
	big[1024] = 'a';
	big[1025] = '\0';
	snprintf(content, sizeof(content),
	         "seetickets = { api_key_file = \"/k\"; };\n"
	         "bigquery = { project = \"my-project\";\n dataset = \"%s\"; };\n",
	         big);
	expect_errors(content,
	              "3: bigquery.dataset: must be 1 to 1024 letters, digits or underscores");
	expect_errors("seetickets = { api_key_file = \"/k\"; };\n"
	              "bigquery = { project = \"my-project\"; dataset = \"my.data\"; };\n",
	              "2: bigquery.dataset: must be 1 to 1024 letters, digits or underscores");
}

static void test_required_keys(void)
{
	const char *see = "seetickets = { api_key_file = \"/k\"; };\n";
	char content[512];
	/* Missing inside the group: the group's line. */
	snprintf(content, sizeof(content), "%s\nbigquery =\n{\n  location = \"US\";\n};\n", see);
	expect_errors(content, "3: bigquery.project: required key is missing\n"
	                       "3: bigquery.dataset: required key is missing");
	snprintf(content, sizeof(content), "%sbigquery = { dataset = \"d\"; };\n", see);
	expect_errors(content, "2: bigquery.project: required key is missing");
	/* No group at all: line 1. */
	expect_errors(see, "1: bigquery.project: required key is missing\n"
	                   "1: bigquery.dataset: required key is missing");
	/* A group of the wrong type is one problem, not three. */
	snprintf(content, sizeof(content), "%sbigquery = \"my-project\";\n", see);
	expect_errors(content, "2: bigquery: expected group");
}

static void test_feeds_are_checked_together(void)
{
	expect_one("events", "table = \"sales\";", "events.table: must differ from sales.table");
	expect_one("sales", "table = \"events\";", "sales.table: must differ from events.table");
	char *content = with("sales", "enabled = false; }; events = { enabled = false;");
	expect_errors(content,
	              "11: events.enabled: at least one of sales.enabled and events.enabled must "
	              "be true");
	free(content);
	/* Events off: sales needs its own codes. */
	content = with("sales", "event_codes = [ ]; }; events = {\n enabled = false;");
	expect_errors(content, "11: sales.event_codes: required when events are disabled");
	free(content);
	content = with("sales", "interval = 60; }; events = {\n enabled = false;");
	expect_errors(content, "10: sales.event_codes: required when events are disabled");
	free(content);
	content = with("events", "enabled = false;");
	expect_errors(content, "1: sales.event_codes: required when events are disabled");
	free(content);
	content = with("sales", "event_codes = [ \"A\" ]; }; events = {\n enabled = false;");
	config_free(load_ok(content));
	free(content);
	/* Sales off and events off does not also complain about codes. */
	content =
	        with("sales", "enabled = false; event_codes = [ ]; }; events = { enabled = false;");
	expect_errors(content,
	              "11: events.enabled: at least one of sales.enabled and events.enabled must "
	              "be true");
	free(content);
	/* Sales off alone is fine. */
	struct config *c = load_with("sales", "enabled = false;");
	if (c) {
		CHECK_INT(c->sales.feed.enabled, false);
		CHECK_INT(c->events.feed.enabled, true);
	}
	config_free(c);
}

static void test_event_codes_as_array_or_list(void)
{
	const char *forms[] = {"event_codes = [ \"A1\", \"B2\", \"C3\" ];",
	                       "event_codes = ( \"A1\", \"B2\", \"C3\" );",
	                       "event_codes = [\n    \"A1\",\n    \"B2\",\n    \"C3\"\n  ];"};
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(forms); i++) {
		struct config *c = load_with("sales", forms[i]);
		if (!c)
			continue;
		CHECK_INT(c->sales.n_event_codes, 3);
		if (c->sales.n_event_codes == 3) {
			CHECK_STR(c->sales.event_codes[0], "A1");
			CHECK_STR(c->sales.event_codes[2], "C3");
			CHECK(c->sales.event_codes[3] == NULL);
		}
		config_free(c);
	}
	struct config *c = load_with("sales", "event_codes = ( );");
	if (c)
		CHECK_INT(c->sales.n_event_codes, 0);
	config_free(c);
	/* A bad element is reported on its own line. */
	char *content = with("sales", "event_codes = [\n \"A\",\n \"\" ];");
	expect_errors(content, "13: sales.event_codes: entry 2: must not be empty");
	free(content);
}

static void test_many_problems_in_one_pass(void)
{
	expect_errors(
	        "log_level = \"loud\";\n"
	        "state_dir = \"relative\";\n"
	        "seetickets = {\n"
	        "  base_url = \"http://example.com\";\n"
	        "  page_size = 10001;\n"
	        "  colour = 1;\n"
	        "};\n"
	        "bigquery = {\n"
	        "  dataset = \"a-b\";\n"
	        "  batch_rows = 0;\n"
	        "};\n"
	        "sales = { interval = 0; table = \"t\"; };\n"
	        "events = { table = \"t\";\n"
	        "  interval = 86401; };\n",
	        "1: log_level: must be one of debug, info, notice, warning, error\n"
	        "2: state_dir: must be an absolute path\n"
	        "3: seetickets: one of api_key_secret, api_key_file or api_key_credential is "
	        "required\n"
	        "4: seetickets.base_url: must be https:// (plain http only for loopback hosts)\n"
	        "5: seetickets.page_size: must be between 0 and 10000 (is 10001)\n"
	        "6: seetickets.colour: unknown key\n"
	        "8: bigquery.project: required key is missing\n"
	        "9: bigquery.dataset: must be 1 to 1024 letters, digits or underscores\n"
	        "10: bigquery.batch_rows: must be between 1 and 50000 (is 0)\n"
	        "12: sales.interval: must be between 1 and 86400 (is 0)\n"
	        "13: events.table: must differ from sales.table\n"
	        "14: events.interval: must be between 1 and 86400 (is 86401)");
}

static void test_syntax_error_is_one_line(void)
{
	expect_errors("log_level = \"info\";\n"
	              "seetickets = {\n"
	              "  page_size = = 3;\n"
	              "  timeout = 0;\n"
	              "};\n",
	              "3: syntax: syntax error");
	expect_errors("a = 1;\na = 2;\n", "2: syntax: duplicate setting name");
}

static void test_unreadable_file(void)
{
	char path[600];
	snprintf(path, sizeof(path), "%s/does-not-exist.conf", tmpdir);
	struct config *c = (struct config *)(uintptr_t)1;
	char *errors = NULL;
	CHECK_INT(config_load(path, &c, &errors), -ENOENT);
	CHECK(c == NULL);
	char want[700];
	snprintf(want, sizeof(want), "%s: cannot read: No such file or directory\n", path);
	CHECK_STR(errors, want);
	free(errors);
	errors = NULL;
	CHECK_INT(config_load(tmpdir, &c, &errors), -EISDIR);
	snprintf(want, sizeof(want), "%s: cannot read: Is a directory\n", tmpdir);
	CHECK_STR(errors, want);
	free(errors);
	/* Without an errors pointer the result is the same, just silent. */
	CHECK_INT(config_load(path, &c, NULL), -ENOENT);
	write_file(conf_path, "bigquery = 1;\n");
	CHECK_INT(config_load(conf_path, &c, NULL), -EINVAL);
	CHECK(c == NULL);
}

static void test_include_is_relative_to_the_file(void)
{
	char inc[600];
	snprintf(inc, sizeof(inc), "%s/bq.inc", tmpdir);
	write_file(inc, "project = \"my-project\";\ndataset = \"d\";\nbatch_rows = 0;\n");
	/* Run from elsewhere to show the include is not found through the cwd. */
	char cwd[1024];
	CHECK(getcwd(cwd, sizeof(cwd)) != NULL);
	CHECK_INT(chdir("/"), 0);
	int rc;
	char *errors = NULL;
	struct config *c = load("seetickets = { api_key_file = \"/k\"; };\n"
	                        "bigquery = {\n  @include \"bq.inc\"\n};\n",
	                        &rc, &errors);
	CHECK_INT(chdir(cwd), 0);
	CHECK_INT(rc, -EINVAL);
	char want[700];
	snprintf(want, sizeof(want),
	         "%s:3: bigquery.batch_rows: must be between 1 and 50000 (is 0)\n", inc);
	CHECK_STR(errors, want);
	free(errors);
	config_free(c);
	/* A syntax error inside the included file names that file. */
	write_file(inc, "project = \"my-project\";\ndataset = = \"d\";\n");
	errors = NULL;
	c = load("bigquery = {\n  @include \"bq.inc\"\n};\n", &rc, &errors);
	CHECK_INT(rc, -EINVAL);
	snprintf(want, sizeof(want), "%s:2: syntax: syntax error\n", inc);
	CHECK_STR(errors, want);
	free(errors);
	config_free(c);
}

static void test_values_are_not_echoed(void)
{
	int rc;
	char *errors = NULL;
	struct config *c = load("seetickets = { api_key_secret = \"sk_live_4f9a8b7c6d\"; };\n"
	                        "bigquery = { project = \"my-project\"; dataset = \"d\"; };\n",
	                        &rc, &errors);
	CHECK_INT(rc, -EINVAL);
	CHECK(errors && !strstr(errors, "sk_live"));
	free(errors);
	config_free(c);
	config_free(NULL);
}

/* Expectations written into a sample file as "# expect: LINE: key: problem substring". */
static void check_sample(const char *path, bool good)
{
	char *text = NULL;
	size_t len;
	if (util_read_file(path, 1 << 20, &text, &len) < 0) {
		printf("# cannot read %s\n", path);
		tap_case_failed = 1;
		return;
	}
	struct config *c = NULL;
	char *errors = NULL;
	int rc = config_load(path, &c, &errors);
	if (good) {
		CHECK_INT(rc, 0);
		if (rc)
			printf("# %s\n", path);
		print_diag(errors);
		free(errors);
		free(text);
		config_free(c);
		return;
	}
	CHECK_INT(rc, -EINVAL);
	size_t expected = 0, found = 0;
	for (const char *p = text; (p = strstr(p, "# expect: ")); p++) {
		p += strlen("# expect: ");
		size_t n = strcspn(p, "\n");
		char line[1024];
		snprintf(line, sizeof(line), "%.*s", (int)n, p);
		expected++;
		/* "LINE: key: substring" -> prefix "PATH:LINE: key: " */
		char *colon = strchr(line, ':');
		char *colon2 = colon ? strchr(colon + 1, ':') : NULL;
		if (!colon2) {
			printf("# %s: malformed expectation: %s\n", path, line);
			tap_case_failed = 1;
			continue;
		}
		*colon2 = '\0';
		const char *substr = colon2 + 1 + (colon2[1] == ' ');
		char prefix[3200];
		snprintf(prefix, sizeof(prefix), "%s:%s: ", path, line);
		bool hit = false;
		for (const char *e = errors; e && *e;) {
			size_t el = strcspn(e, "\n");
			char one[2048];
			snprintf(one, sizeof(one), "%.*s", (int)el, e);
			if (util_str_has_prefix(one, prefix) &&
			    strstr(one + strlen(prefix), substr))
				hit = true;
			e += el + (e[el] == '\n');
		}
		if (!hit) {
			printf("# %s: no problem \"%s%s\"\n", path, prefix, substr);
			tap_case_failed = 1;
		}
	}
	for (const char *e = errors; e && *e; e++)
		if (*e == '\n')
			found++;
	if (expected == 0 || found != expected) {
		printf("# %s: %zu expectations, %zu problems\n", path, expected, found);
		print_diag(errors);
		tap_case_failed = 1;
	}
	free(errors);
	free(text);
	config_free(c);
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static size_t check_sample_dir(const char *sub, bool good)
{
	char dir[1024];
	snprintf(dir, sizeof(dir), "%s/tests/config/%s", top_srcdir(), sub);
	DIR *d = opendir(dir);
	if (!d) {
		printf("# cannot open %s\n", dir);
		tap_case_failed = 1;
		return 0;
	}
	char *names[256];
	size_t n = 0;
	struct dirent *de;
	while ((de = readdir(d)) && n < UTIL_ARRAY_SIZE(names)) {
		size_t l = strlen(de->d_name);
		if (l > 5 && strcmp(de->d_name + l - 5, ".conf") == 0)
			names[n++] = strdup(de->d_name);
	}
	closedir(d);
	qsort(names, n, sizeof(names[0]), name_cmp);
	for (size_t i = 0; i < n; i++) {
		char path[2048];
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		check_sample(path, good);
		free(names[i]);
	}
	return n;
}

static void test_bad_sample_files_report_what_they_expect(void)
{
	CHECK(check_sample_dir("bad", false) >= 15);
}

static void test_good_sample_files_load(void)
{
	CHECK(check_sample_dir("good", true) >= 1);
}

int main(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "%s/stbq-config-XXXXXX",
	         getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(tmpdir)) {
		printf("# mkdtemp: %s\n1..0\n", strerror(errno));
		return 1;
	}
	snprintf(conf_path, sizeof(conf_path), "%s/test.conf", tmpdir);

	RUN(test_minimal_file_gets_every_default);
	RUN(test_state_directory_from_systemd_replaces_the_default_only);
	RUN(test_every_key_is_read);
	RUN(test_shipped_sample_is_valid);
	RUN(test_api_key_secret_is_normalised);
	RUN(test_api_key_file_and_credential);
	RUN(test_exactly_one_api_key_source);
	RUN(test_unknown_keys_are_errors);
	RUN(test_wrong_types_are_errors);
	RUN(test_integers_and_int64);
	RUN(test_integer_ranges);
	RUN(test_string_values_are_checked);
	RUN(test_trailing_slash_is_stripped_from_endpoints);
	RUN(test_project_and_dataset_syntax);
	RUN(test_required_keys);
	RUN(test_feeds_are_checked_together);
	RUN(test_event_codes_as_array_or_list);
	RUN(test_many_problems_in_one_pass);
	RUN(test_syntax_error_is_one_line);
	RUN(test_unreadable_file);
	RUN(test_include_is_relative_to_the_file);
	RUN(test_values_are_not_echoed);
	RUN(test_bad_sample_files_report_what_they_expect);
	RUN(test_good_sample_files_load);

	static const char *const made[] = {"test.conf", "ca.pem", "secret.pem", "bq.inc"};
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(made); i++) {
		char path[600];
		snprintf(path, sizeof(path), "%s/%s", tmpdir, made[i]);
		unlink(path);
	}
	if (rmdir(tmpdir) < 0)
		printf("# could not remove %s: %s\n", tmpdir, strerror(errno));
	return tap_done();
}
