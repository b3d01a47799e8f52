/* Request metrics. One mutex guards a short list of series; at the request
 * rates of one node that costs far less than the request itself. */
#include "core/metrics.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static const double buckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                 0.05,   0.1,   0.25,   0.5,   1,    2.5, 5};
#define NBUCKETS (sizeof buckets / sizeof buckets[0])

typedef struct series {
    const char *method;
    const char *route;
    int status;
    unsigned long long count;
    struct series *next;
} series;

typedef struct hist {
    const char *route;
    unsigned long long bucket[NBUCKETS];
    unsigned long long count;
    double sum;
    struct hist *next;
} hist;

typedef struct counter {
    const char *name;
    const char *help;
    unsigned long long value;
    struct counter *next;
} counter;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static series *all_series;
static hist *all_hists;
static counter *all_counters;

void metrics_observe_request(const char *method, const char *route, int status, double seconds)
{
    pthread_mutex_lock(&mu);
    series *s = all_series;
    while (s && !(s->status == status && s->route == route && s->method == method))
        s = s->next;
    if (!s) {
        s = xcalloc(1, sizeof *s);
        s->method = method;
        s->route = route;
        s->status = status;
        s->next = all_series;
        all_series = s;
    }
    s->count++;
    hist *h = all_hists;
    while (h && h->route != route)
        h = h->next;
    if (!h) {
        h = xcalloc(1, sizeof *h);
        h->route = route;
        h->next = all_hists;
        all_hists = h;
    }
    for (size_t i = 0; i < NBUCKETS; i++)
        if (seconds <= buckets[i])
            h->bucket[i]++;
    h->count++;
    h->sum += seconds;
    pthread_mutex_unlock(&mu);
}

void metrics_count(const char *name, const char *help)
{
    pthread_mutex_lock(&mu);
    counter *c = all_counters;
    while (c && strcmp(c->name, name))
        c = c->next;
    if (!c) {
        c = xcalloc(1, sizeof *c);
        c->name = name;
        c->help = help;
        c->next = all_counters;
        all_counters = c;
    }
    c->value++;
    pthread_mutex_unlock(&mu);
}

void metrics_render(buf_t *out)
{
    pthread_mutex_lock(&mu);
    buf_puts(out, "# HELP roastery_http_requests_total HTTP requests by route and status.\n"
                  "# TYPE roastery_http_requests_total counter\n");
    for (series *s = all_series; s; s = s->next)
        buf_printf(out,
                   "roastery_http_requests_total{method=\"%s\",route=\"%s\",status=\"%d\"} %llu\n",
                   s->method, s->route, s->status, s->count);
    buf_puts(out, "# HELP roastery_http_request_duration_seconds HTTP request latency.\n"
                  "# TYPE roastery_http_request_duration_seconds histogram\n");
    for (hist *h = all_hists; h; h = h->next) {
        for (size_t i = 0; i < NBUCKETS; i++)
            buf_printf(out,
                       "roastery_http_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"} %llu\n",
                       h->route, buckets[i], h->bucket[i]);
        buf_printf(out,
                   "roastery_http_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} %llu\n"
                   "roastery_http_request_duration_seconds_sum{route=\"%s\"} %.6f\n"
                   "roastery_http_request_duration_seconds_count{route=\"%s\"} %llu\n",
                   h->route, h->count, h->route, h->sum, h->route, h->count);
    }
    for (counter *c = all_counters; c; c = c->next)
        buf_printf(out, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", c->name, c->help, c->name,
                   c->name, c->value);
    pthread_mutex_unlock(&mu);
}

void metrics_reset(void)
{
    pthread_mutex_lock(&mu);
    while (all_series) {
        series *n = all_series->next;
        free(all_series);
        all_series = n;
    }
    while (all_hists) {
        hist *n = all_hists->next;
        free(all_hists);
        all_hists = n;
    }
    while (all_counters) {
        counter *n = all_counters->next;
        free(all_counters);
        all_counters = n;
    }
    pthread_mutex_unlock(&mu);
}
