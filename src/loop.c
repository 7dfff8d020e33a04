/* loop.c - timers, signals and sd_notify for a single-threaded daemon. */
#include "autoconfig.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "log.h"
#include "loop.h"
#include "util.h"

struct loop_timer {
	char name[32];
	uint64_t due_ms; /* monotonic */
	uint64_t interval_ms;
	loop_timer_fn fn;
	void *userdata;
};

struct loop {
	int sigfd;
	sigset_t oldmask;
	bool stop;
	bool reload_pending;
	struct loop_timer timers[LOOP_MAX_TIMERS];
	int ntimers;
	loop_reload_fn reload;
	void *reload_userdata;
	uint64_t watchdog_usec; /* 0 = no watchdog */
	uint64_t last_ping_us;
};

struct loop *loop_new(void)
{
	struct loop *l = calloc(1, sizeof(*l));
	if (!l)
		return NULL;
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &mask, &l->oldmask) < 0) {
		free(l);
		return NULL;
	}
	l->sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (l->sigfd < 0) {
		int e = errno;
		sigprocmask(SIG_SETMASK, &l->oldmask, NULL);
		free(l);
		errno = e;
		return NULL;
	}
	if (sd_watchdog_enabled(0, &l->watchdog_usec) <= 0)
		l->watchdog_usec = 0;
	l->last_ping_us = util_now_us();
	return l;
}

void loop_free(struct loop *l)
{
	if (!l)
		return;
	close(l->sigfd);
	sigprocmask(SIG_SETMASK, &l->oldmask, NULL);
	free(l);
}

uint64_t loop_jitter_ms(uint64_t interval_ms)
{
	uint64_t span = interval_ms / LOOP_JITTER_FRACTION;
	if (span > LOOP_JITTER_MAX_MS)
		span = LOOP_JITTER_MAX_MS;
	return span ? util_random_u32() % (span + 1) : 0;
}

int loop_add_timer(struct loop *l, const char *name, uint64_t first_ms, uint64_t interval_ms,
                   loop_timer_fn fn, void *userdata)
{
	if (l->ntimers >= LOOP_MAX_TIMERS)
		return -ENOSPC;
	struct loop_timer *t = &l->timers[l->ntimers];
	snprintf(t->name, sizeof(t->name), "%s", name);
	t->due_ms = util_now_ms() + first_ms;
	t->interval_ms = interval_ms;
	t->fn = fn;
	t->userdata = userdata;
	return l->ntimers++;
}

void loop_set_interval(struct loop *l, int id, uint64_t interval_ms)
{
	if (id >= 0 && id < l->ntimers)
		l->timers[id].interval_ms = interval_ms;
}

void loop_set_reload(struct loop *l, loop_reload_fn fn, void *userdata)
{
	l->reload = fn;
	l->reload_userdata = userdata;
}

void loop_stop(struct loop *l)
{
	l->stop = true;
}

bool loop_stopping(const struct loop *l)
{
	return l->stop;
}

/* Ping at half the watchdog period, as sd_watchdog_enabled(3) recommends. */
static void feed_watchdog(struct loop *l)
{
	if (!l->watchdog_usec)
		return;
	uint64_t now = util_now_us();
	if (now - l->last_ping_us >= l->watchdog_usec / 2) {
		sd_notify(0, "WATCHDOG=1");
		l->last_ping_us = now;
	}
}

bool loop_poll_signals(struct loop *l)
{
	struct signalfd_siginfo si;
	while (read(l->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGTERM:
		case SIGINT:
			if (!l->stop)
				log_info("received %s, stopping",
				         si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
			l->stop = true;
			break;
		case SIGHUP:
			l->reload_pending = true;
			break;
		}
	}
	feed_watchdog(l);
	return l->stop;
}

int loop_cancelled(void *loop)
{
	return loop_poll_signals(loop) ? 1 : 0;
}

static void do_reload(struct loop *l)
{
	l->reload_pending = false;
	if (!l->reload)
		return;
	sd_notify(0, "RELOADING=1");
	l->reload(l->reload_userdata);
	sd_notify(0, "READY=1");
}

/* The timer due first; ties go to the one added first. */
static struct loop_timer *next_timer(struct loop *l)
{
	struct loop_timer *best = NULL;
	for (int i = 0; i < l->ntimers; i++)
		if (!best || l->timers[i].due_ms < best->due_ms)
			best = &l->timers[i];
	return best;
}

int loop_run(struct loop *l)
{
	while (!loop_poll_signals(l)) {
		if (l->reload_pending) {
			do_reload(l);
			continue;
		}
		struct loop_timer *t = next_timer(l);
		uint64_t now = util_now_ms();
		if (t && t->due_ms <= now) {
			int r = t->fn(t->userdata);
			if (r < 0 && r != -ECANCELED)
				log_debug("%s: poll ended with %s", t->name, strerror(-r));
			t->due_ms = util_now_ms() + t->interval_ms + loop_jitter_ms(t->interval_ms);
			continue;
		}
		/* Sleep until the next timer, a signal, or the next watchdog ping. */
		uint64_t wait = t ? t->due_ms - now : 60000;
		if (l->watchdog_usec) {
			uint64_t half_ms = l->watchdog_usec / 2000;
			uint64_t since = (util_now_us() - l->last_ping_us) / 1000;
			uint64_t until_ping = since >= half_ms ? 0 : half_ms - since;
			if (until_ping < wait)
				wait = until_ping;
		}
		if (wait > 60000)
			wait = 60000;
		struct pollfd pfd = {.fd = l->sigfd, .events = POLLIN};
		if (poll(&pfd, 1, (int)wait) < 0 && errno != EINTR)
			return -errno;
	}
	return 0;
}

void loop_notify_ready(struct loop *l)
{
	(void)l;
	sd_notify(0, "READY=1");
}

void loop_notify_status(struct loop *l, const char *fmt, ...)
{
	(void)l;
	char *msg = NULL;
	va_list ap;
	va_start(ap, fmt);
	int r = vasprintf(&msg, fmt, ap);
	va_end(ap);
	if (r < 0)
		return;
	sd_notifyf(0, "STATUS=%s", msg);
	free(msg);
}

void loop_notify_extend_timeout(struct loop *l, uint64_t usec)
{
	(void)l;
	sd_notifyf(0, "EXTEND_TIMEOUT_USEC=%llu", (unsigned long long)usec);
}

void loop_notify_stopping(struct loop *l)
{
	(void)l;
	sd_notify(0, "STOPPING=1");
}
