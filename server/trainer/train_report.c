/* JSON-lines events, per-phase time and peak memory. */
#include "trainer/train_report.h"

#include "lib/util.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static FILE *stream;
static int64_t phase_started;
static json_t *phases;  /* {name: {"seconds", "rss_mib"}} of the phases ended so far */
static double peak_mib; /* the largest phase peak */

void train_report_set_stream(FILE *out)
{
    stream = out;
}

static void emit(json_t *ev)
{
    char *s = json_dumps(ev, JSON_COMPACT | JSON_REAL_PRECISION(10));
    FILE *f = stream ? stream : stdout;
    if (s) {
        fputs(s, f);
        fputc('\n', f);
        fflush(f);
    }
    free(s);
    json_decref(ev);
}

void train_report_log(const char *level, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (!strcmp(level, "warn") || !strcmp(level, "error"))
        fprintf(stderr, "roastery train: %s\n", msg);
    emit(json_pack("{s:s, s:s, s:s}", "event", "log", "level", level, "msg", msg));
}

void train_report_metric(int step, const char *name, double value)
{
    if (!isfinite(value))
        return;
    emit(json_pack("{s:s, s:i, s:s, s:f}", "event", "metric", "step", step, "name", name, "value",
                   value));
}

void train_report_result(json_t *metrics)
{
    emit(json_pack("{s:s, s:O}", "event", "result", "metrics", metrics));
}

/* A "VmXXX:   1234 kB" line of /proc/self/status, in KiB; 0 if unknown. */
static long status_kib(const char *key)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = 0;
    size_t n = strlen(key);
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, key, n) && line[n] == ':') {
            kib = strtol(line + n + 1, NULL, 10);
            break;
        }
    if (f)
        fclose(f);
    return kib;
}

double train_report_peak_rss_mib(void)
{
    return (double)status_kib("VmHWM") / 1024.0;
}

void train_report_phase_start(const char *name)
{
    /* Resets the peak RSS to the current RSS (Linux >= 4.0), so the end event
     * shows the phase's own peak. Without it the peak is since the start. */
    int fd = open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
        if (write(fd, "5", 1) != 1)
            errno = 0;
        close(fd);
    }
    phase_started = now_ms_monotonic();
    emit(json_pack("{s:s, s:s, s:s}", "event", "phase", "phase", name, "state", "start"));
}

void train_report_phase_end(const char *name, json_t *extra)
{
    double secs = (double)(now_ms_monotonic() - phase_started) / 1000.0;
    json_t *ev =
        json_pack("{s:s, s:s, s:s, s:f, s:f}", "event", "phase", "phase", name, "state", "end",
                  "seconds", secs, "rss_mib", round(train_report_peak_rss_mib() * 10) / 10);
    secs = round(secs * 1000) / 1000;
    double rss = round(train_report_peak_rss_mib() * 10) / 10;
    if (rss > peak_mib)
        peak_mib = rss;
    if (!phases)
        phases = json_object();
    json_object_set_new(phases, name, json_pack("{s:f, s:f}", "seconds", secs, "rss_mib", rss));
    if (extra)
        json_object_update(ev, extra);
    json_decref(extra);
    emit(ev);
}

json_t *train_report_phases(void)
{
    json_t *o = phases ? json_deep_copy(phases) : json_object();
    json_object_set_new(o, "peak_rss_mib", json_real(peak_mib));
    return o;
}

void train_report_reset(void)
{
    json_decref(phases);
    phases = NULL;
    peak_mib = 0;
}
