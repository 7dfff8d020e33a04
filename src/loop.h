/* loop.h - the daemon's single event loop.
 *
 * One thread. Each feed owns a timer on the monotonic clock; a timer fires,
 * its callback runs to completion (a whole poll), and the timer is re-armed
 * one interval (plus a little jitter) after the callback returns, so a slow
 * poll never piles up behind itself. SIGTERM, SIGINT and SIGHUP are blocked
 * and read from a signalfd, both in the main wait and - through
 * loop_poll_signals() - from inside long transfers, so a stop request is
 * seen within about a second wherever the daemon is. sd_notify messages for
 * systemd (READY, STATUS, WATCHDOG, RELOADING, STOPPING) go out from here. */
#ifndef STBQ_LOOP_H
#define STBQ_LOOP_H

#include <stdbool.h>
#include <stdint.h>

#define LOOP_MAX_TIMERS      8
#define LOOP_JITTER_FRACTION 20    /* jitter up to interval/20 ...        */
#define LOOP_JITTER_MAX_MS   10000 /* ... and never more than 10 s        */

struct loop;

/* A timer callback: one poll. Returning a negative code only gets logged. */
typedef int (*loop_timer_fn)(void *userdata);
/* Called from the loop (never from inside a transfer) after SIGHUP. */
typedef void (*loop_reload_fn)(void *userdata);

struct loop *loop_new(void); /* blocks the signals and opens the signalfd; NULL on error */
void loop_free(struct loop *l);

/* Add a timer that first fires after first_ms, then every interval_ms after
 * each run. Timers due at the same moment run in the order they were added.
 * Returns the timer id (>= 0) or -ENOSPC. */
int loop_add_timer(struct loop *l, const char *name, uint64_t first_ms, uint64_t interval_ms,
                   loop_timer_fn fn, void *userdata);
void loop_set_interval(struct loop *l, int id, uint64_t interval_ms); /* from the next run on */
void loop_set_reload(struct loop *l, loop_reload_fn fn, void *userdata);

/* Run until a stop is requested (SIGTERM/SIGINT or loop_stop()). 0 or -errno. */
int loop_run(struct loop *l);
void loop_stop(struct loop *l);

/* Read pending signals without blocking and keep the watchdog fed. Returns
 * true once a stop was requested. Safe to call very often (from curl's
 * progress callback); suitable as http_options.cancelled via loop_cancelled(). */
bool loop_poll_signals(struct loop *l);
int loop_cancelled(void *loop);
bool loop_stopping(const struct loop *l);

/* systemd notifications; no-ops when NOTIFY_SOCKET is unset. */
void loop_notify_ready(struct loop *l);
void loop_notify_status(struct loop *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void loop_notify_extend_timeout(struct loop *l, uint64_t usec);
void loop_notify_stopping(struct loop *l);

/* Jitter to add to an interval: 0..min(interval/LOOP_JITTER_FRACTION, LOOP_JITTER_MAX_MS). */
uint64_t loop_jitter_ms(uint64_t interval_ms);

#endif
