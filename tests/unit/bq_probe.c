/* bq_probe.c - drive the BigQuery client from the command line for the integration test.
 *
 *   bq_probe --endpoint URL --credentials FILE --project P --dataset D [--location L]
 *            [--attempts N] [--budget-ms MS] [--job-poll-ms MS] [--job-max-wait-ms MS]
 *            [--resend-ms MS] [--span-ms MS] [--log-level LEVEL]
 *            ( ensure-table TABLE sales|events [--create]
 *            | seed TABLE sales|events [--stop-after N]
 *            | insert TABLE sales|events ROWS.ndjson [--method streaming|load]
 *                     [--batch-rows N] [--batch-bytes N]
 *            | commands )
 *
 * Every command first checks the dataset (as the daemon does at start) and prints one JSON
 * object per step on stdout: {"cmd":"dataset","rc":0,"location":"EU"}, then the command's own
 * result with "rc", "errno" (the errno name, or null) and what it did: per-row states of an
 * insert, every key a seed delivered, and the client's counters. "commands" reads the same
 * commands (without options, plus "check-dataset" and "stats") one per line from stdin and
 * answers each, so a test can change the fake between steps. Logs go to stderr. Exit 0 when
 * every step returned 0, 1 otherwise, 64 on usage errors. */
#include "autoconfig.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "bigquery-internal.h"
#include "bigquery.h"
#include "gauth.h"
#include "http.h"
#include "log.h"
#include "probe_common.h"
#include "schema.h"
#include "util.h"

struct probe {
	struct probe_common common;
	struct bq_options o;
	struct bq *bq;
	const char *project, *dataset;
	long job_poll_ms, job_max_wait_ms, resend_ms;
	bool create;
	long stop_after;
	int failures;
};

static json_t *result(const char *cmd, int rc, struct probe *p)
{
	const char *name = rc < 0 ? strerrorname_np(-rc) : NULL;
	json_t *o = json_pack("{s:s, s:i}", "cmd", cmd, "rc", rc);
	json_object_set_new(o, "errno", name ? json_string(name) : json_null());
	if (rc != 0)
		p->failures++;
	return o;
}

static json_t *stats_json(struct probe *p)
{
	struct bq_stats st;
	bq_get_stats(p->bq, &st);
	return json_pack("{s:I, s:I, s:I, s:I, s:I}", "requests", (json_int_t)st.requests,
	                 "retries", (json_int_t)st.retries, "rows_sent", (json_int_t)st.rows_sent,
	                 "rows_invalid", (json_int_t)st.rows_invalid, "splits",
	                 (json_int_t)st.splits);
}

static const struct schema *schema_named(const char *name)
{
	if (strcmp(name, "sales") == 0)
		return &schema_sales;
	if (strcmp(name, "events") == 0)
		return &schema_events;
	return NULL;
}

static void do_dataset(struct probe *p)
{
	int r = bq_check_dataset(p->bq);
	json_t *o = result("dataset", r, p);
	probe_emit(o);
}

static void do_ensure(struct probe *p, const char *table, const struct schema *s, bool create)
{
	int r = bq_ensure_table(p->bq, table, s, create);
	json_t *o = result("ensure-table", r, p);
	json_object_set_new(o, "table", json_string(table));
	json_object_set_new(o, "stats", stats_json(p));
	probe_emit(o);
}

struct seed {
	json_t *keys;
	size_t nulls, progress_calls, last_progress, first_progress, first_total, columns;
	long stop_after;
};

static int seed_row(const char *const *values, const size_t *lens, size_t n, void *ud)
{
	struct seed *s = ud;
	s->columns = n;
	if (n == 0 || !values[0])
		s->nulls++;
	else
		json_array_append_new(s->keys, json_stringn(values[0], lens[0]));
	if (s->stop_after > 0 && json_array_size(s->keys) >= (size_t)s->stop_after)
		return 7;
	return 0;
}

static void seed_progress(size_t rows, size_t total, void *ud)
{
	struct seed *s = ud;
	if (s->progress_calls++ == 0) {
		s->first_progress = rows;
		s->first_total = total;
	}
	s->last_progress = rows;
}

static void do_seed(struct probe *p, const char *table, const struct schema *s)
{
	struct seed sd = {.keys = json_array(), .stop_after = p->stop_after};
	char *sql = NULL;
	int r;
	if (strcmp(s->feed, "sales") == 0)
		r = asprintf(&sql, "SELECT uniqueCode FROM `%s.%s.%s` WHERE uniqueCode IS NOT NULL",
		             p->project, p->dataset, table);
	else
		r = asprintf(&sql, "SELECT id, starts FROM `%s.%s.%s` WHERE id IS NOT NULL",
		             p->project, p->dataset, table);
	uint64_t t0 = util_now_ms();
	r = r < 0 ? -ENOMEM : bq_query(p->bq, sql, seed_row, &sd, seed_progress);
	free(sql);
	json_t *o = result("seed", r, p);
	json_object_set_new(o, "rows", json_integer((json_int_t)json_array_size(sd.keys)));
	json_object_set_new(o, "nulls", json_integer((json_int_t)sd.nulls));
	json_object_set_new(o, "columns", json_integer((json_int_t)sd.columns));
	json_object_set_new(o, "progress_calls", json_integer((json_int_t)sd.progress_calls));
	json_object_set_new(o, "last_progress", json_integer((json_int_t)sd.last_progress));
	json_object_set_new(o, "first_progress", json_integer((json_int_t)sd.first_progress));
	json_object_set_new(o, "first_total", json_integer((json_int_t)sd.first_total));
	json_object_set_new(o, "ms", json_integer((json_int_t)(util_now_ms() - t0)));
	json_object_set_new(o, "keys", sd.keys);
	json_object_set_new(o, "stats", stats_json(p));
	probe_emit(o);
}

static const char *state_name(enum bq_row_state s)
{
	switch (s) {
	case BQ_ROW_DONE:
		return "done";
	case BQ_ROW_INVALID:
		return "invalid";
	default:
		return "pending";
	}
}

static void do_insert(struct probe *p, const char *table, const struct schema *s, const char *path)
{
	FILE *f = fopen(path, "r");
	json_t **rows = NULL;
	const char **keys = NULL;
	size_t n = 0, cap = 0;
	char *line = NULL;
	size_t lcap = 0;
	ssize_t len;
	int r = 0;

	if (!f) {
		r = -errno;
		probe_emit(result("insert", r, p));
		return;
	}
	while ((len = getline(&line, &lcap, f)) > 0) {
		if (len == 1 && line[0] == '\n')
			continue;
		json_t *row = json_loadb(line, (size_t)len, 0, NULL);
		if (!row) {
			r = -EINVAL;
			break;
		}
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			rows = realloc(rows, cap * sizeof(*rows));
			keys = realloc(keys, cap * sizeof(*keys));
			if (!rows || !keys)
				abort();
		}
		rows[n] = row;
		keys[n] = schema_row_key(s, row);
		n++;
	}
	free(line);
	fclose(f);
	/* As the spool holds them: each row's compact JSON. */
	struct bq_text *text = calloc(n ? n : 1, sizeof(*text));
	if (!text)
		abort();
	for (size_t i = 0; i < n; i++) {
		char *t = json_dumps(rows[i], JSON_COMPACT);
		if (!t)
			abort();
		text[i] = (struct bq_text){t, strlen(t)};
	}
	struct bq_row_status *st = calloc(n ? n : 1, sizeof(*st));
	uint64_t t0 = util_now_ms();
	if (r == 0)
		r = bq_insert(p->bq, table, text, keys, n, st);
	json_t *o = result("insert", r, p);
	json_t *list = json_array();
	size_t counts[3] = {0};
	for (size_t i = 0; i < n; i++) {
		json_t *e =
		        json_pack("{s:s?, s:s}", "key", keys[i], "state", state_name(st[i].state));
		if (st[i].state == BQ_ROW_INVALID)
			json_object_set_new(e, "reason", json_string(st[i].reason));
		json_array_append_new(list, e);
		counts[st[i].state]++;
	}
	json_object_set_new(o, "rows", list);
	json_object_set_new(o, "pending", json_integer((json_int_t)counts[BQ_ROW_PENDING]));
	json_object_set_new(o, "done", json_integer((json_int_t)counts[BQ_ROW_DONE]));
	json_object_set_new(o, "invalid", json_integer((json_int_t)counts[BQ_ROW_INVALID]));
	json_object_set_new(o, "ms", json_integer((json_int_t)(util_now_ms() - t0)));
	json_object_set_new(o, "stats", stats_json(p));
	probe_emit(o);
	for (size_t i = 0; i < n; i++) {
		json_decref(rows[i]);
		free((char *)text[i].json);
	}
	free(text);
	free(rows);
	free(keys);
	free(st);
}

/* One command: argv[0] is its name. 0, or 64 on a usage error. */
static int run(struct probe *p, int argc, char **argv)
{
	const struct schema *s = argc >= 3 ? schema_named(argv[2]) : NULL;
	if (argc >= 1 && strcmp(argv[0], "check-dataset") == 0) {
		do_dataset(p);
	} else if (argc >= 1 && strcmp(argv[0], "stats") == 0) {
		json_t *o = json_pack("{s:s}", "cmd", "stats");
		json_object_set_new(o, "stats", stats_json(p));
		probe_emit(o);
	} else if (argc >= 3 && s && strcmp(argv[0], "ensure-table") == 0) {
		do_ensure(p, argv[1], s, p->create || (argc >= 4 && !strcmp(argv[3], "create")));
	} else if (argc >= 3 && s && strcmp(argv[0], "seed") == 0) {
		do_seed(p, argv[1], s);
	} else if (argc >= 4 && s && strcmp(argv[0], "insert") == 0) {
		do_insert(p, argv[1], s, argv[3]);
	} else {
		return 64;
	}
	return 0;
}

static void run_commands(struct probe *p)
{
	char line[4096];
	while (fgets(line, sizeof(line), stdin)) {
		char *argv[8];
		int argc = 0;
		for (char *t = strtok(line, " \t\r\n"); t && argc < 8; t = strtok(NULL, " \t\r\n"))
			argv[argc++] = t;
		if (argc == 0)
			continue;
		if (strcmp(argv[0], "quit") == 0)
			break;
		if (run(p, argc, argv) != 0) {
			probe_emit(json_pack("{s:s, s:s}", "cmd", "error", "error",
			                     "unknown command"));
			p->failures++;
		}
	}
}

static void usage(FILE *f)
{
	fprintf(f, "usage: bq_probe --endpoint URL --credentials FILE --project P --dataset D\n"
	           "       [--location L] [--attempts N] [--budget-ms MS] [--job-poll-ms MS]\n"
	           "       [--job-max-wait-ms MS] [--resend-ms MS] [--span-ms MS]\n"
	           "       [--log-level LEVEL]\n"
	           "       ( ensure-table TABLE sales|events [--create]\n"
	           "       | seed TABLE sales|events [--stop-after N]\n"
	           "       | insert TABLE sales|events ROWS.ndjson [--method streaming|load]\n"
	           "                [--batch-rows N] [--batch-bytes N]\n"
	           "       | commands )\n");
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	        PROBE_OPTIONS,
	        {"endpoint", required_argument, NULL, 'e'},
	        {"project", required_argument, NULL, 'p'},
	        {"dataset", required_argument, NULL, 'd'},
	        {"location", required_argument, NULL, 'L'},
	        {"job-poll-ms", required_argument, NULL, 'j'},
	        {"job-max-wait-ms", required_argument, NULL, 'J'},
	        {"resend-ms", required_argument, NULL, 'R'},
	        {"span-ms", required_argument, NULL, 'S'},
	        {"create", no_argument, NULL, 'C'},
	        {"stop-after", required_argument, NULL, 's'},
	        {"method", required_argument, NULL, 'm'},
	        {"batch-rows", required_argument, NULL, 'r'},
	        {"batch-bytes", required_argument, NULL, 'B'},
	        {NULL, 0, NULL, 0},
	};
	struct probe p = {
	        .common = {.usage = usage, .policy = {.max_attempts = 4, .budget_ms = 30000}},
	        .o = {.method = CONFIG_INSERT_STREAMING,
	              .batch_rows = 500,
	              .batch_bytes = 9000000}};
	int c;

	p.o.policy = &p.common.policy;
	log_open(LOG_TARGET_STDERR);
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		if (probe_option(&p.common, c, optarg))
			continue;
		switch (c) {
		case 'e':
			p.o.endpoint = optarg;
			break;
		case 'p':
			p.o.project = p.project = optarg;
			break;
		case 'd':
			p.o.dataset = p.dataset = optarg;
			break;
		case 'L':
			p.o.location = optarg;
			break;
		case 'j':
			p.job_poll_ms = atol(optarg);
			break;
		case 'J':
			p.job_max_wait_ms = atol(optarg);
			break;
		case 'R':
			p.resend_ms = atol(optarg);
			break;
		case 'S':
			p.o.stream_span_ms = atol(optarg);
			break;
		case 'C':
			p.create = true;
			break;
		case 's':
			p.stop_after = atol(optarg);
			break;
		case 'm':
			if (strcmp(optarg, "streaming") == 0)
				p.o.method = CONFIG_INSERT_STREAMING;
			else if (strcmp(optarg, "load") == 0)
				p.o.method = CONFIG_INSERT_LOAD;
			else
				probe_usage(&p.common, 64);
			break;
		case 'r':
			p.o.batch_rows = strtoul(optarg, NULL, 10);
			break;
		case 'B':
			p.o.batch_bytes = strtoul(optarg, NULL, 10);
			break;
		default:
			probe_usage(&p.common, 64);
		}
	}
	int nargs = argc - optind;
	char **args = argv + optind;
	if (!p.o.endpoint || !p.common.credentials || !p.project || !p.dataset || nargs < 1)
		probe_usage(&p.common, 64);
	bool commands = strcmp(args[0], "commands") == 0;
	if (!commands &&
	    !((nargs == 3 && (!strcmp(args[0], "ensure-table") || !strcmp(args[0], "seed"))) ||
	      (nargs == 4 && !strcmp(args[0], "insert"))))
		probe_usage(&p.common, 64);
	if (!commands && !schema_named(args[2]))
		probe_usage(&p.common, 64);

	struct http_options ho = {.timeout_s = 60, .max_response_bytes = 64u << 20};
	char err[512] = "";
	int r = probe_open(&p.common, &ho, NULL, err, sizeof(err));
	p.o.auth = p.common.auth;
	p.o.http = p.common.http;
	p.bq = r == 0 ? bq_new(&p.o) : NULL;
	if (!p.bq) {
		probe_emit(
		        json_pack("{s:s, s:s}", "cmd", "setup", "error", r == 0 ? "bq_new" : err));
		probe_close(&p.common);
		return 1;
	}
	bq_set_timing(p.bq, p.job_poll_ms, p.job_max_wait_ms, p.resend_ms);

	if (commands) {
		run_commands(&p);
	} else {
		do_dataset(&p);
		if (p.failures == 0)
			run(&p, nargs, args);
	}
	bq_free(p.bq);
	probe_close(&p.common);
	return p.failures ? 1 : 0;
}
