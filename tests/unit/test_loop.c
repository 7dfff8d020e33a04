/* Unit tests for loop.c: timer order, re-arming, jitter bounds, signals. */
#include "autoconfig.h"

#include <signal.h>
#include <unistd.h>

#include "loop.h"
#include "tap.h"
#include "util.h"

struct trace {
	struct loop *loop;
	char order[64];
	int n;
	int stop_after;
	int reloads;
	uint64_t fired_ms[64];
};

static int record(struct trace *t, char c)
{
	t->fired_ms[t->n] = util_now_ms();
	t->order[t->n++] = c;
	t->order[t->n] = '\0';
	if (t->n >= t->stop_after)
		loop_stop(t->loop);
	return 0;
}

static int fire_a(void *ud)
{
	return record(ud, 'a');
}

static int fire_b(void *ud)
{
	return record(ud, 'b');
}

static int fire_and_signal(void *ud)
{
	struct trace *t = ud;
	if (t->n == 0)
		kill(getpid(), SIGHUP);
	if (t->n == 1)
		kill(getpid(), SIGTERM);
	return record(ud, 'x');
}

static void on_reload(void *ud)
{
	struct trace *t = ud;
	t->reloads++;
}

static void test_timers_due_together_run_in_the_order_added(void)
{
	struct trace t = {.stop_after = 2};
	t.loop = loop_new();
	CHECK(t.loop != NULL);
	CHECK_INT(loop_add_timer(t.loop, "events", 0, 1000, fire_a, &t), 0);
	CHECK_INT(loop_add_timer(t.loop, "sales", 0, 1000, fire_b, &t), 1);
	CHECK_INT(loop_run(t.loop), 0);
	CHECK_STR(t.order, "ab");
	loop_free(t.loop);
}

static void test_shorter_interval_fires_more_often(void)
{
	struct trace t = {.stop_after = 8};
	t.loop = loop_new();
	loop_add_timer(t.loop, "slow", 0, 300, fire_a, &t);
	loop_add_timer(t.loop, "fast", 0, 40, fire_b, &t);
	uint64_t start = util_now_ms();
	CHECK_INT(loop_run(t.loop), 0);
	int a = 0, b = 0;
	for (int i = 0; i < t.n; i++)
		*(t.order[i] == 'a' ? &a : &b) += 1;
	CHECK_INT(t.order[0], 'a');
	CHECK_INT(t.order[1], 'b');
	CHECK(b >= 6);
	CHECK(a <= 2);
	/* 7 fast intervals of 40 ms (+ up to 2 ms jitter each) cannot finish early. */
	CHECK(util_now_ms() - start >= 6 * 40);
	/* Re-armed after each run: consecutive fast runs are at least one interval apart. */
	for (int i = 1; i < t.n; i++)
		for (int j = i + 1; j < t.n; j++)
			if (t.order[i] == 'b' && t.order[j] == 'b') {
				CHECK(t.fired_ms[j] - t.fired_ms[i] >= 40);
				break;
			}
	loop_free(t.loop);
}

static void test_interval_change_applies_from_next_run(void)
{
	struct trace t = {.stop_after = 3};
	t.loop = loop_new();
	int id = loop_add_timer(t.loop, "x", 0, 100000, fire_a, &t);
	loop_set_interval(t.loop, id, 10);
	uint64_t start = util_now_ms();
	CHECK_INT(loop_run(t.loop), 0);
	CHECK(util_now_ms() - start < 5000);
	CHECK_STR(t.order, "aaa");
	loop_free(t.loop);
}

static void test_jitter_stays_within_bounds(void)
{
	for (int i = 0; i < 1000; i++) {
		CHECK(loop_jitter_ms(1000) <= 50);
		CHECK(loop_jitter_ms(86400000) <= LOOP_JITTER_MAX_MS);
		CHECK_INT(loop_jitter_ms(10), 0);
	}
}

static void test_sighup_reloads_between_polls_and_sigterm_stops(void)
{
	struct trace t = {.stop_after = 100};
	t.loop = loop_new();
	loop_set_reload(t.loop, on_reload, &t);
	loop_add_timer(t.loop, "x", 0, 20, fire_and_signal, &t);
	CHECK_INT(loop_run(t.loop), 0);
	CHECK_INT(t.reloads, 1);
	CHECK(loop_stopping(t.loop));
	CHECK(t.n <= 3);
	loop_free(t.loop);
}

static void test_poll_signals_sees_a_pending_stop(void)
{
	struct loop *l = loop_new();
	CHECK(!loop_poll_signals(l));
	kill(getpid(), SIGINT);
	CHECK(loop_poll_signals(l));
	CHECK_INT(loop_cancelled(l), 1);
	loop_free(l);
}

int main(void)
{
	RUN(test_timers_due_together_run_in_the_order_added);
	RUN(test_shorter_interval_fires_more_often);
	RUN(test_interval_change_applies_from_next_run);
	RUN(test_jitter_stays_within_bounds);
	RUN(test_sighup_reloads_between_polls_and_sigterm_stops);
	RUN(test_poll_signals_sees_a_pending_stop);
	return tap_done();
}
