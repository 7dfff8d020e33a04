/* daemon.c - start-up, the feeds' timers, reload, --once and --dry-run.
 *
 * Start-up order is the delivery protocol's: credentials, API key, dataset
 * and tables, seed the key sets from BigQuery, replay the spool, READY=1,
 * then poll. Everything built from the configuration (HTTP clients,
 * credentials, the two API clients, the API key) lives in one `struct
 * clients`; a reload builds a complete new one and swaps it in only when
 * every part of it came up, like the configuration itself. */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pwd.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "bigquery.h"
#include "calendar.h"
#include "audit.h"
#include "daemon.h"
#include "feed.h"
#include "gauth.h"
#include "http.h"
#include "log.h"
#include "loop.h"
#include "secret.h"
#include "seetickets.h"
#include "util.h"

struct clients {
	struct http_client *google_http;
	struct http_client *st_http;
	struct gauth *auth;
	struct bq *bq;
	struct st_client *st;
	struct secbuf *key; /* NULL until loaded, and again after See Tickets refused it */
};

#define DAEMON_STATUS_MAX 160 /* one feed's part of the STATUS= line */

struct feed_totals {
	unsigned long long fetched, fresh, inserted, rejected, polls, failures;
	unsigned long long changed, inserted_changes; /* track_changes */
	int64_t last_success;                         /* wall-clock seconds, 0 = never */
	int64_t last_poll;              /* wall-clock seconds of the last poll's end, 0 = never */
	char status[DAEMON_STATUS_MAX]; /* "fetched N, new N, …" of that poll */
};

struct daemon {
	struct config *cfg;
	const struct daemon_options *opts;
	struct loop *loop;
	struct http_policy policy;
	struct clients *cl;
	struct feed *events, *sales;
	struct calendar *cal; /* which events sales polls ask for */
	uint64_t trust_ms;    /* insertId de-duplication window trusted (test knob) */
	struct feed_totals tot_events, tot_sales;
	int timer_events, timer_sales;
	int lock_fd;
};

static void clients_free(struct clients *cl)
{
	if (!cl)
		return;
	secbuf_free(cl->key);
	st_client_free(cl->st);
	bq_free(cl->bq);
	gauth_free(cl->auth);
	http_client_free(cl->st_http);
	http_client_free(cl->google_http);
	free(cl);
}

static struct clients *clients_new(struct daemon *d, const struct config *c)
{
	struct clients *cl = calloc(1, sizeof(*cl));
	char err[256] = "";
	if (!cl)
		return NULL;
	struct http_options go = {
	        .ca_file = c->google.ca_file,
	        .timeout_s = DAEMON_GOOGLE_TIMEOUT_S,
	        .max_response_bytes = DAEMON_GOOGLE_MAX_RESPONSE,
	        .cancelled = d->loop ? loop_cancelled : NULL,
	        .cancel_userdata = d->loop,
	};
	struct http_options so = go;
	so.timeout_s = c->seetickets.timeout;
	so.max_response_bytes = (size_t)c->seetickets.max_response_bytes;
	cl->google_http = http_client_new(&go);
	cl->st_http = http_client_new(&so);
	if (!cl->google_http || !cl->st_http) {
		log_error("cannot set up HTTP (is the CA file %s readable?)",
		          c->google.ca_file[0] ? c->google.ca_file : "of the system");
		goto fail;
	}
	struct gauth_options ao = {
	        .credentials = c->google.credentials,
	        .metadata_host = c->google.metadata_host,
	        .http = cl->google_http,
	        .policy = &d->policy,
	};
	cl->auth = gauth_new(&ao, err, sizeof(err));
	if (!cl->auth) {
		log_error("Google credentials: %s", err);
		goto fail;
	}
	struct bq_options bo = {
	        .endpoint = c->google.bigquery_endpoint,
	        .project = c->bigquery.project,
	        .dataset = c->bigquery.dataset,
	        .location = c->bigquery.location,
	        .method = c->bigquery.insert_method,
	        .batch_rows = (size_t)c->bigquery.batch_rows,
	        .batch_bytes = (size_t)c->bigquery.batch_bytes,
	        /* Resends within a call stay well inside the trusted window. */
	        .stream_span_ms = (long)(d->trust_ms / 2),
	        .auth = cl->auth,
	        .http = cl->google_http,
	        .policy = &d->policy,
	};
	struct st_options sto = {
	        .base_url = c->seetickets.base_url,
	        .http = cl->st_http,
	        .policy = &d->policy,
	        .page_size = c->seetickets.page_size,
	        .timeout_s = c->seetickets.timeout,
	        .max_response_bytes = (size_t)c->seetickets.max_response_bytes,
	};
	cl->bq = bq_new(&bo);
	cl->st = st_client_new(&sto);
	if (!cl->bq || !cl->st)
		goto fail;
	return cl;
fail:
	clients_free(cl);
	return NULL;
}

/* The API key is needed before every poll; when See Tickets refused it, it
 * is read again (it may have been rotated in Secret Manager meanwhile). */
static int ensure_key(struct daemon *d)
{
	if (d->cl->key)
		return 0;
	int r = secret_load(d->cfg, d->cl->auth, d->cl->google_http, &d->policy, &d->cl->key);
	if (r == 0)
		st_client_set_key(d->cl->st, d->cl->key);
	return r;
}

/* What the feeds borrow from the daemon; rebuilt after a reload swaps clients. */
static struct feed_env feed_env_of(const struct daemon *d)
{
	return (struct feed_env){
	        .cfg = d->cfg,
	        .bq = d->cl->bq,
	        .st = d->cl->st,
	        .loop = d->loop,
	        .cal = d->cal,
	        .trust_ms = d->trust_ms,
	        .dry_run = d->opts->dry_run,
	        .dry_out = stdout,
	};
}

static void feeds_set_env(struct daemon *d)
{
	struct feed_env env = feed_env_of(d);
	if (d->events)
		feed_set_env(d->events, &env);
	if (d->sales)
		feed_set_env(d->sales, &env);
}

static bool feed_wanted(const struct daemon *d, enum feed_kind k)
{
	const char *name = k == FEED_SALES ? "sales" : "events";
	bool enabled = k == FEED_SALES ? d->cfg->sales.feed.enabled : d->cfg->events.feed.enabled;
	return enabled && (!d->opts->feed || strcmp(d->opts->feed, name) == 0);
}

/* Two daemons on one state directory would send each other's spool twice. */
static int lock_state_dir(struct daemon *d)
{
	char *path = NULL;
	int r = util_mkdir_p(d->cfg->state_dir, 0750);
	if (r < 0) {
		log_error("cannot create the state directory %s: %s", d->cfg->state_dir,
		          strerror(-r));
		return r;
	}
	/* Root running the daemon by hand would write files the service user
	 * can no longer replace, and would follow links that user planted. */
	struct stat st;
	if (geteuid() == 0 && stat(d->cfg->state_dir, &st) == 0 && st.st_uid != 0) {
		struct passwd *pw = getpwuid(st.st_uid);
		log_error("the state directory %s belongs to %s, not root: run the daemon as that "
		          "user, e.g. runuser -u %s -- seetickets-bq ...",
		          d->cfg->state_dir, pw ? pw->pw_name : "another user",
		          pw ? pw->pw_name : "seetickets-bq");
		return -EINVAL;
	}
	if (asprintf(&path, "%s/lock", d->cfg->state_dir) < 0)
		return -ENOMEM;
	d->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640);
	if (d->lock_fd < 0 || flock(d->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		r = -errno;
		log_error("%s: %s", path,
		          r == -EWOULDBLOCK ? "another seetickets-bq uses this state directory"
		                            : strerror(-r));
		/* EWOULDBLOCK is EAGAIN; -EBUSY keeps "held by another" apart
		 * from "service unavailable" for the exit status. */
		if (r == -EWOULDBLOCK)
			r = -EBUSY;
	}
	free(path);
	return r;
}

static int start_feed(struct daemon *d, struct feed *f)
{
	bool create = d->cfg->bigquery.create_tables && !d->opts->dry_run;
	const char *table = f == d->sales ? d->cfg->sales.feed.table : d->cfg->events.feed.table;
	int r = feed_ensure_tables(f, create);
	if (r == -ENOENT && d->opts->dry_run) {
		log_notice("%s: table %s does not exist; a dry run treats it as empty",
		           feed_name(f), table);
		return 0;
	}
	if (r == 0)
		r = feed_seed(f);
	if (r < 0)
		return r; /* without BigQuery's keys every row would look new */
	r = feed_replay(f);
	/* Rows that could not be sent yet stay spooled and go with the next poll. */
	return r == -EAGAIN ? 0 : r;
}

static int startup(struct daemon *d)
{
	int r;
	if (!d->opts->dry_run && (r = lock_state_dir(d)) < 0)
		return r;
	d->cl = clients_new(d, d->cfg);
	if (!d->cl)
		return -EINVAL;
	if (!(d->cal = calendar_new()))
		return -ENOMEM;
	struct feed_env env = feed_env_of(d);
	/* The events feed also serves the sales feed's automatic event codes. */
	bool need_events = feed_wanted(d, FEED_EVENTS) ||
	                   (feed_wanted(d, FEED_SALES) && d->cfg->sales.n_event_codes == 0);
	if (need_events && !(d->events = feed_new(FEED_EVENTS, &env)))
		return -ENOMEM;
	if (feed_wanted(d, FEED_SALES)) {
		if (!(d->sales = feed_new(FEED_SALES, &env)))
			return -ENOMEM;
	}
	log_info("Google credentials: %s", gauth_describe(d->cl->auth));
	if ((r = ensure_key(d)) < 0)
		return r;
	if ((r = bq_check_dataset(d->cl->bq)) < 0)
		return r;
	if (d->events && (r = start_feed(d, d->events)) < 0)
		return r;
	if (d->sales && (r = start_feed(d, d->sales)) < 0)
		return r;
	return 0;
}

static int write_metrics(struct daemon *d)
{
	const char *path = d->cfg->metrics_file;
	if (!path || !path[0] || d->opts->dry_run)
		return 0;
	struct buf b = {0};
	static const struct {
		const char *name, *help, *type;
		size_t off;
	} counters[] = {
	        {"rows_fetched_total", "Rows read from See Tickets.", "counter",
	         offsetof(struct feed_totals, fetched)},
	        {"rows_new_total", "New rows accepted into the spool.", "counter",
	         offsetof(struct feed_totals, fresh)},
	        {"rows_inserted_total", "Rows confirmed by BigQuery.", "counter",
	         offsetof(struct feed_totals, inserted)},
	        {"rows_rejected_total", "Rows dead-lettered.", "counter",
	         offsetof(struct feed_totals, rejected)},
	        {"rows_changed_total", "Changed versions of known rows spooled (track_changes).",
	         "counter", offsetof(struct feed_totals, changed)},
	        {"rows_changes_inserted_total", "Changed versions confirmed by BigQuery.",
	         "counter", offsetof(struct feed_totals, inserted_changes)},
	        {"polls_total", "Polls run.", "counter", offsetof(struct feed_totals, polls)},
	        {"poll_failures_total", "Polls that ended with an error.", "counter",
	         offsetof(struct feed_totals, failures)},
	};
	struct {
		const char *name;
		struct feed *f;
		struct feed_totals *t;
	} feeds[] = {{"events", d->events, &d->tot_events}, {"sales", d->sales, &d->tot_sales}};

	for (size_t i = 0; i < UTIL_ARRAY_SIZE(counters); i++) {
		buf_printf(&b, "# HELP seetickets_bq_%s %s\n# TYPE seetickets_bq_%s %s\n",
		           counters[i].name, counters[i].help, counters[i].name, counters[i].type);
		for (size_t k = 0; k < UTIL_ARRAY_SIZE(feeds); k++) {
			if (!feeds[k].f)
				continue;
			const unsigned long long *v =
			        (const void *)((const char *)feeds[k].t + counters[i].off);
			buf_printf(&b, "seetickets_bq_%s{feed=\"%s\"} %llu\n", counters[i].name,
			           feeds[k].name, *v);
		}
	}
	buf_puts(&b, "# HELP seetickets_bq_known_keys Keys in BigQuery or spooled.\n"
	             "# TYPE seetickets_bq_known_keys gauge\n");
	for (size_t k = 0; k < UTIL_ARRAY_SIZE(feeds); k++)
		if (feeds[k].f)
			buf_printf(&b, "seetickets_bq_known_keys{feed=\"%s\"} %zu\n", feeds[k].name,
			           feed_known(feeds[k].f));
	buf_puts(&b, "# HELP seetickets_bq_spool_segments Spool segments waiting for BigQuery.\n"
	             "# TYPE seetickets_bq_spool_segments gauge\n");
	for (size_t k = 0; k < UTIL_ARRAY_SIZE(feeds); k++)
		if (feeds[k].f)
			buf_printf(&b, "seetickets_bq_spool_segments{feed=\"%s\"} %zu\n",
			           feeds[k].name, feed_spooled(feeds[k].f));
	buf_puts(&b,
	         "# HELP seetickets_bq_last_success_timestamp_seconds End of the last "
	         "successful poll.\n# TYPE seetickets_bq_last_success_timestamp_seconds gauge\n");
	for (size_t k = 0; k < UTIL_ARRAY_SIZE(feeds); k++)
		if (feeds[k].f)
			buf_printf(&b,
			           "seetickets_bq_last_success_timestamp_seconds{feed=\"%s\"} "
			           "%" PRId64 "\n",
			           feeds[k].name, feeds[k].t->last_success);
	int r = b.data ? util_write_file_atomic(path, b.data, b.len, 0644) : -ENOMEM;
	if (r < 0)
		log_warning("cannot write metrics file %s: %s", path, strerror(-r));
	buf_free(&b);
	return r;
}

/* One poll of one feed, with its summary record and STATUS line. */
/* "17:40:02 UTC" in the machine's time zone, as the journal shows it, with
 * the date in front when it is not today's: a feed that last polled
 * yesterday must not look current. */
static void format_clock(int64_t when, char *out, size_t len)
{
	time_t tt = (time_t)when, now = time(NULL);
	struct tm tm, today;
	if (!localtime_r(&tt, &tm) || !localtime_r(&now, &today) ||
	    strftime(out, len,
	             tm.tm_yday == today.tm_yday && tm.tm_year == today.tm_year
	                     ? "%H:%M:%S %Z"
	                     : "%Y-%m-%d %H:%M:%S %Z",
	             &tm) == 0)
		snprintf(out, len, "?");
}

/* One STATUS= line for both feeds, so that `systemctl status` shows each one's last poll:
 * the feed that just polled first ("sales: fetched … at T1; events: fetched … at T2"),
 * the other one once it has polled. */
static void notify_status(struct daemon *d, struct feed *f, const struct feed_totals *t)
{
	if (!d->loop)
		return;
	struct feed *other = f == d->sales ? d->events : d->sales;
	const struct feed_totals *ot = f == d->sales ? &d->tot_events : &d->tot_sales;
	char at[32], oat[32];
	format_clock(t->last_poll, at, sizeof(at));
	if (other && ot->last_poll) {
		format_clock(ot->last_poll, oat, sizeof(oat));
		loop_notify_status(d->loop, "%s: %s at %s; %s: %s at %s", feed_name(f), t->status,
		                   at, feed_name(other), ot->status, oat);
	} else {
		loop_notify_status(d->loop, "%s: %s at %s", feed_name(f), t->status, at);
	}
}

static int run_poll(struct daemon *d, struct feed *f, struct feed_totals *t)
{
	struct feed_stats st = {0};
	int r = ensure_key(d);
	if (r == 0) {
		r = feed_poll(f, &st);
	} else {
		st.error = r;
	}
	if (r == -EKEYREJECTED) {
		char src[300];
		log_error(
		        "%s: See Tickets refused the API key from %s; it is read again before the "
		        "next poll (check the key, or send SIGHUP after rotating it)",
		        feed_name(f), secret_describe(d->cfg, src, sizeof(src)));
		secbuf_free(d->cl->key);
		d->cl->key = NULL;
		st_client_set_key(d->cl->st, NULL);
	}
	t->polls++;
	t->fetched += st.fetched;
	t->fresh += st.fresh;
	t->inserted += st.inserted;
	t->rejected += st.rejected;
	t->changed += st.changed;
	t->inserted_changes += st.inserted_changes;
	if (r < 0)
		t->failures++;
	else
		t->last_success = util_wall_s();

	char v[8][24];
	snprintf(v[0], sizeof(v[0]), "%zu", st.fetched);
	snprintf(v[1], sizeof(v[1]), "%zu", st.fresh);
	snprintf(v[2], sizeof(v[2]), "%zu", st.inserted);
	snprintf(v[3], sizeof(v[3]), "%zu", st.rejected);
	snprintf(v[4], sizeof(v[4]), "%" PRIu64, st.duration_ms);
	snprintf(v[5], sizeof(v[5]), "%zu", feed_spooled(f));
	snprintf(v[6], sizeof(v[6]), "%zu", st.changed);
	snprintf(v[7], sizeof(v[7]), "%zu", st.inserted_changes);
	bool tracked = feed_changes(f) != NULL;
	char changes[80] = "";
	if (tracked)
		snprintf(changes, sizeof(changes), ", changed %zu (inserted %zu)", st.changed,
		         st.inserted_changes);
	struct log_field fields[] = {
	        {"FEED", feed_name(f)},   {"ROWS_FETCHED", v[0]},  {"ROWS_NEW", v[1]},
	        {"ROWS_INSERTED", v[2]},  {"ROWS_REJECTED", v[3]}, {"DURATION_MS", v[4]},
	        {"SPOOL_SEGMENTS", v[5]}, {"ROWS_CHANGED", v[6]},  {"ROWS_CHANGES_INSERTED", v[7]},
	};
	log_write(r < 0 && r != -ECANCELED ? LOG_WARNING : LOG_INFO, fields,
	          UTIL_ARRAY_SIZE(fields) - (tracked ? 0 : 2),
	          "%s: fetched %zu, new %zu%s, inserted %zu, rejected %zu in %" PRIu64 " ms%s%s",
	          feed_name(f), st.fetched, st.fresh, changes, st.inserted, st.rejected,
	          st.duration_ms, r < 0 ? "; failed: " : "", r < 0 ? strerror(-r) : "");
	snprintf(t->status, sizeof(t->status),
	         "fetched %zu, new %zu, inserted %zu, rejected %zu%s%s", st.fetched, st.fresh,
	         st.inserted, st.rejected, r < 0 ? " (last poll failed, retrying)" : "",
	         st.no_codes ? " (no event code to ask for; see the log)" : "");
	t->last_poll = util_wall_s();
	notify_status(d, f, t);
	write_metrics(d);
	return r;
}

static int poll_events(void *ud)
{
	struct daemon *d = ud;
	return run_poll(d, d->events, &d->tot_events);
}

static int poll_sales(void *ud)
{
	struct daemon *d = ud;
	return run_poll(d, d->sales, &d->tot_sales);
}

/* Keys whose change would make the key sets or the spool describe the wrong
 * table: those need a restart, and a reload that changes them is refused. */
static const char *immutable_change(const struct config *a, const struct config *b)
{
	if (strcmp(a->state_dir, b->state_dir))
		return "state_dir";
	if (strcmp(a->bigquery.project, b->bigquery.project))
		return "bigquery.project";
	if (strcmp(a->bigquery.dataset, b->bigquery.dataset))
		return "bigquery.dataset";
	if (strcmp(a->sales.feed.table, b->sales.feed.table))
		return "sales.table";
	if (strcmp(a->events.feed.table, b->events.feed.table))
		return "events.table";
	if (a->sales.feed.enabled != b->sales.feed.enabled)
		return "sales.enabled";
	if (a->events.feed.enabled != b->events.feed.enabled)
		return "events.enabled";
	if (a->sales.feed.track_changes != b->sales.feed.track_changes)
		return "sales.track_changes";
	if (a->events.feed.track_changes != b->events.feed.track_changes)
		return "events.track_changes";
	return NULL;
}

static void reload(void *ud)
{
	struct daemon *d = ud;
	struct config *fresh = NULL;
	char *errors = NULL;
	const char *why = NULL;

	log_info("reloading configuration from %s", d->opts->config_path);
	if (config_load(d->opts->config_path, &fresh, &errors) < 0) {
		log_lines(LOG_ERR, errors);
		log_error(
		        "configuration reload refused; the previous configuration stays in force");
		free(errors);
		return;
	}
	free(errors);
	if (!why && fresh->bigquery.insert_method != d->cfg->bigquery.insert_method &&
	    ((d->events && feed_spooled(d->events)) || (d->sales && feed_spooled(d->sales)))) {
		/* Rows already sent one way must finish that way: a load job may
		 * still be running for them, or insertIds may still be in use. */
		log_error("configuration reload refused: bigquery.insert_method cannot change "
		          "while rows are spooled with an unknown outcome; let the spool drain, "
		          "or restart the service to apply it");
		config_free(fresh);
		return;
	}
	if ((why = immutable_change(d->cfg, fresh)) != NULL) {
		log_error(
		        "configuration reload refused: %s cannot change while running; restart the "
		        "service to apply it",
		        why);
		config_free(fresh);
		return;
	}
	struct clients *cl = clients_new(d, fresh);
	if (!cl) {
		log_error(
		        "configuration reload refused; the previous configuration stays in force");
		config_free(fresh);
		return;
	}
	/* The API key is read again on reload: that is how a rotated key is
	 * picked up without a restart. */
	struct clients *old = d->cl;
	struct config *oldcfg = d->cfg;
	d->cl = cl;
	d->cfg = fresh;
	if (ensure_key(d) < 0) {
		log_error("configuration reload refused: the API key could not be read");
		d->cl = old;
		d->cfg = oldcfg;
		clients_free(cl);
		config_free(fresh);
		return;
	}
	(void)bq_check_dataset(d->cl->bq);
	clients_free(old);
	config_free(oldcfg);
	feeds_set_env(d);
	log_set_level(d->opts->log_level >= 0 ? d->opts->log_level : d->cfg->log_level);
	loop_set_interval(d->loop, d->timer_events, (uint64_t)d->cfg->events.feed.interval * 1000);
	loop_set_interval(d->loop, d->timer_sales, (uint64_t)d->cfg->sales.feed.interval * 1000);
	log_info("configuration reloaded");
}

static int exit_status_for(int r)
{
	switch (r) {
	case 0:
		return EX_OK;
	case -ENOMEM:
		return EX_OSERR;
	case -EBUSY: /* the state directory is held by another instance */
	case -ECANCELED:
		return EX_TEMPFAIL;
	default:
		return EX_UNAVAILABLE;
	}
}

static int run_once(struct daemon *d)
{
	int worst = 0;
	bool pending = false;
	struct {
		struct feed *f;
		struct feed_totals *t;
		bool wanted;
	} order[] = {{d->events, &d->tot_events, feed_wanted(d, FEED_EVENTS)},
	             {d->sales, &d->tot_sales, feed_wanted(d, FEED_SALES)}};

	for (size_t i = 0; i < UTIL_ARRAY_SIZE(order); i++) {
		if (!order[i].f || !order[i].wanted)
			continue;
		int r = run_poll(d, order[i].f, order[i].t);
		if (feed_last(order[i].f)->rows_pending || feed_spooled(order[i].f) > 0)
			pending = true;
		if (r < 0 && !worst)
			worst = r;
		if (r == -ECANCELED) {
			/* Stopped before the run was through: whatever failed
			 * before, the answer is "run again later". */
			worst = r;
			break;
		}
	}
	if (d->opts->dry_run)
		fflush(stdout);
	if (pending && !d->opts->dry_run) {
		log_warning("rows remain spooled; they will be sent by the next run");
		return EX_TEMPFAIL;
	}
	return exit_status_for(worst);
}

/* --audit: the feeds read the source into the audit, write nothing, and
 * take no lock: the service may be running beside it. */
static int run_audit(struct daemon *d)
{
	struct audit_options ao = {
	        .json = d->opts->audit_json, .wait = d->opts->audit_wait, .feed = d->opts->feed};
	struct audit *a = NULL;
	int r = 0;
	d->cl = clients_new(d, d->cfg);
	if (!d->cl)
		return EX_CONFIG;
	if (!(d->cal = calendar_new()) || !(a = audit_new(d->cfg, d->cl->bq, d->loop, d->cal, &ao)))
		r = -ENOMEM;
	struct feed_env env = feed_env_of(d);
	env.dry_run = true;
	bool need_events = feed_wanted(d, FEED_EVENTS) ||
	                   (feed_wanted(d, FEED_SALES) && d->cfg->sales.n_event_codes == 0);
	if (r == 0 && need_events) {
		env.sink = audit_sink(a, FEED_EVENTS);
		if (!(d->events = feed_new(FEED_EVENTS, &env)))
			r = -ENOMEM;
	}
	if (r == 0 && feed_wanted(d, FEED_SALES)) {
		env.sink = audit_sink(a, FEED_SALES);
		if (!(d->sales = feed_new(FEED_SALES, &env)))
			r = -ENOMEM;
	}
	if (r == 0)
		log_info("Google credentials: %s", gauth_describe(d->cl->auth));
	if (r == 0)
		r = ensure_key(d);
	if (r == 0)
		r = bq_check_dataset(d->cl->bq);
	if (r == 0)
		r = audit_run(a, d->events, d->sales, stdout);
	audit_free(a);
	if (r >= 0)
		return r;
	if (r == -ETIMEDOUT || r == -ECANCELED)
		return EX_TEMPFAIL;
	return r == -EINVAL ? EX_CONFIG : exit_status_for(r);
}

static int run_loop(struct daemon *d)
{
	loop_set_reload(d->loop, reload, d);
	d->timer_events = d->timer_sales = -1;
	/* Events first, so automatic sales codes include events found just now. */
	if (d->events && feed_wanted(d, FEED_EVENTS))
		d->timer_events = loop_add_timer(d->loop, "events", 0,
		                                 (uint64_t)d->cfg->events.feed.interval * 1000,
		                                 poll_events, d);
	if (d->sales)
		d->timer_sales =
		        loop_add_timer(d->loop, "sales", 0,
		                       (uint64_t)d->cfg->sales.feed.interval * 1000, poll_sales, d);
	loop_notify_ready(d->loop);
	loop_notify_status(d->loop, "running: %zu events and %zu sales known",
	                   d->events ? feed_known(d->events) : 0,
	                   d->sales ? feed_known(d->sales) : 0);
	log_info("seetickets-bq %s running", PACKAGE_VERSION);
	int r = loop_run(d->loop);
	loop_notify_stopping(d->loop);
	return r < 0 ? EX_OSERR : EX_OK;
}

int daemon_run(struct config *cfg, const struct daemon_options *o)
{
	struct daemon d = {.cfg = cfg, .opts = o, .lock_fd = -1, .trust_ms = FEED_DEDUP_TRUST_MS};
	/* Tests shorten the fake's insertId window and say so here (HACKING.md). */
	const char *trust = getenv("STBQ_DEDUP_TRUST_MS");
	if (trust && *trust && strtoull(trust, NULL, 10) > 0)
		d.trust_ms = strtoull(trust, NULL, 10);
	int status;

	d.policy = o->once || o->audit
	                   ? (struct http_policy){DAEMON_ONCE_ATTEMPTS, DAEMON_ONCE_BUDGET_MS}
	                   : (struct http_policy){DAEMON_HTTP_ATTEMPTS, DAEMON_HTTP_BUDGET_MS};
	/* The loop owns the signals in every mode: --once must stop promptly too. */
	d.loop = loop_new();
	if (!d.loop) {
		log_error("cannot set up signal handling: %s", strerror(errno));
		config_free(cfg);
		return EX_OSERR;
	}
	int r = o->audit ? 0 : startup(&d);
	if (o->audit) {
		status = run_audit(&d);
	} else if (r < 0) {
		if (r != -ECANCELED)
			log_error("start-up failed: %s", strerror(-r));
		if (r == -ECANCELED)
			status = o->once ? EX_TEMPFAIL : EX_OK;
		else if (r == -EINVAL)
			status = EX_CONFIG; /* credentials file or CA file unusable */
		else
			status = exit_status_for(r);
	} else if (o->once) {
		status = run_once(&d);
	} else {
		status = run_loop(&d);
	}
	log_info("stopped");
	feed_free(d.sales);
	feed_free(d.events);
	calendar_free(d.cal);
	clients_free(d.cl);
	config_free(d.cfg);
	loop_free(d.loop);
	if (d.lock_fd >= 0)
		close(d.lock_fd);
	return status;
}
