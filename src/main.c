/* main.c - command line, wiring, exit status. */
#include "autoconfig.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <sys/prctl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "config.h"
#include "daemon.h"
#include "http.h"
#include "log.h"

struct options {
	const char *config_path;
	bool once;
	bool dry_run;
	const char *feed; /* NULL = every enabled feed */
	bool check_config;
	int log_level; /* -1 = from the file */
	bool audit, json, wait;
};

static void usage(FILE *f)
{
	fprintf(f,
	        "Usage: seetickets-bq [-c FILE] [--once] [--dry-run] [--feed sales|events]\n"
	        "                     [--audit [--json] [--wait]]\n"
	        "                     [--check-config] [--log-level LEVEL] [-V|--version] "
	        "[-h|--help]\n"
	        "\n"
	        "Copy See Tickets sales and events into BigQuery, each row exactly once.\n"
	        "\n"
	        "  -c, --config FILE    configuration file (default %s)\n"
	        "      --once           seed, run one cycle of every enabled feed, drain the "
	        "spool, exit\n"
	        "      --dry-run        like --once, but print the new rows as NDJSON and insert "
	        "nothing\n"
	        "      --feed NAME      limit --once/--dry-run/--audit to 'sales' or 'events'\n"
	        "      --audit          compare the source with BigQuery: missing, duplicated,\n"
	        "                       stale rows; inserts nothing, may run beside the service\n"
	        "      --json           --audit: print one JSON document\n"
	        "      --wait           --audit: wait for the service's next poll to confirm\n"
	        "      --check-config   validate the configuration file and exit\n"
	        "      --log-level L    debug, info, notice, warning or error (overrides the "
	        "file)\n"
	        "  -V, --version        print the version and exit\n"
	        "  -h, --help           print this help and exit\n"
	        "\n"
	        "Without --once or --dry-run it runs as a daemon in the foreground until SIGTERM.\n"
	        "Exit status: 0 ok, 64 usage, 69 service unavailable, 75 temporary failure, 78 "
	        "configuration;\n"
	        "--audit: 1 when rows are missing, duplicated or stale.\n",
	        CONFIG_DEFAULT_PATH);
}

/* Returns 0, or EX_USAGE after printing why. */
static int parse_args(int argc, char **argv, struct options *o)
{
	enum {
		OPT_ONCE = 256,
		OPT_DRY_RUN,
		OPT_FEED,
		OPT_CHECK,
		OPT_LOG_LEVEL,
		OPT_AUDIT,
		OPT_JSON,
		OPT_WAIT
	};
	static const struct option longopts[] = {
	        {"config", required_argument, NULL, 'c'},
	        {"once", no_argument, NULL, OPT_ONCE},
	        {"dry-run", no_argument, NULL, OPT_DRY_RUN},
	        {"feed", required_argument, NULL, OPT_FEED},
	        {"check-config", no_argument, NULL, OPT_CHECK},
	        {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
	        {"audit", no_argument, NULL, OPT_AUDIT},
	        {"json", no_argument, NULL, OPT_JSON},
	        {"wait", no_argument, NULL, OPT_WAIT},
	        {"version", no_argument, NULL, 'V'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	int c;

	*o = (struct options){.config_path = CONFIG_DEFAULT_PATH, .log_level = -1};
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":c:Vh", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			o->config_path = optarg;
			break;
		case OPT_ONCE:
			o->once = true;
			break;
		case OPT_DRY_RUN:
			o->dry_run = true;
			o->once = true;
			break;
		case OPT_FEED:
			if (strcmp(optarg, "sales") != 0 && strcmp(optarg, "events") != 0) {
				fprintf(stderr,
				        "seetickets-bq: --feed: expected 'sales' or 'events', got "
				        "'%s'\n",
				        optarg);
				return EX_USAGE;
			}
			o->feed = optarg;
			break;
		case OPT_CHECK:
			o->check_config = true;
			break;
		case OPT_AUDIT:
			o->audit = true;
			break;
		case OPT_JSON:
			o->json = true;
			break;
		case OPT_WAIT:
			o->wait = true;
			break;
		case OPT_LOG_LEVEL:
			o->log_level = log_level_parse(optarg);
			if (o->log_level < 0) {
				fprintf(stderr,
				        "seetickets-bq: --log-level: expected debug, info, notice, "
				        "warning or error, got '%s'\n",
				        optarg);
				return EX_USAGE;
			}
			break;
		case 'V':
			printf("seetickets-bq %s\n", PACKAGE_VERSION);
			exit(EX_OK);
		case 'h':
			usage(stdout);
			exit(EX_OK);
		case ':':
			fprintf(stderr, "seetickets-bq: option '%s' needs a value\n",
			        argv[optind - 1]);
			usage(stderr);
			return EX_USAGE;
		default:
			fprintf(stderr, "seetickets-bq: unknown option '%s'\n", argv[optind - 1]);
			usage(stderr);
			return EX_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "seetickets-bq: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return EX_USAGE;
	}
	if (o->feed && !o->once && !o->audit) {
		fprintf(stderr, "seetickets-bq: --feed works with --once, --dry-run or --audit\n");
		return EX_USAGE;
	}
	if ((o->json || o->wait) && !o->audit) {
		fprintf(stderr, "seetickets-bq: --json and --wait work with --audit only\n");
		return EX_USAGE;
	}
	if (o->audit && (o->once || o->check_config)) {
		fprintf(stderr,
		        "seetickets-bq: --audit cannot be combined with --once, --dry-run or "
		        "--check-config\n");
		return EX_USAGE;
	}
	if (o->check_config && o->once) {
		fprintf(stderr, "seetickets-bq: --check-config cannot be combined with --once or "
		                "--dry-run\n");
		return EX_USAGE;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct options opts;
	struct config *cfg = NULL;
	char *errors = NULL;
	int r;

	/* A full disk or a file size limit must surface as a write error the
	 * spool can handle, and a closed socket as an error curl reports. */
	signal(SIGXFSZ, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	/* No core file, no ptrace by the same user: the process holds the API
	 * key, access tokens and perhaps a service-account key. */
	(void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	log_open(LOG_TARGET_AUTO);
	r = parse_args(argc, argv, &opts);
	if (r)
		return r;
	if (opts.log_level >= 0)
		log_set_level(opts.log_level);

	if (config_load(opts.config_path, &cfg, &errors) < 0) {
		/* --check-config and a terminal get the lines verbatim; under
		 * systemd each one becomes its own journal record. */
		if (opts.check_config || !log_is_journal())
			fputs(errors ? errors : "configuration error\n", stderr);
		else
			log_lines(LOG_ERR, errors ? errors : "configuration error");
		free(errors);
		return EX_CONFIG;
	}
	free(errors);
	if (opts.check_config) {
		puts("configuration OK");
		config_free(cfg);
		return EX_OK;
	}
	log_set_level(opts.log_level >= 0 ? opts.log_level : cfg->log_level);

	struct daemon_options dopts = {
	        .config_path = opts.config_path,
	        .once = opts.once,
	        .dry_run = opts.dry_run,
	        .feed = opts.feed,
	        .log_level = opts.log_level,
	        .audit = opts.audit,
	        .audit_json = opts.json,
	        .audit_wait = opts.wait,
	};
	http_global_init();
	r = daemon_run(cfg, &dopts);
	http_global_cleanup();
	return r;
}
