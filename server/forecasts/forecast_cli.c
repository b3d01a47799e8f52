/* roastery forecast: arguments, the inputs (history, model, promotions,
 * weather outlook), the buffered CSV writer (a file published by rename, or
 * stdout for a pipe into COPY) and the events. The work is forecast_gen's. */
#include "forecasts/forecast_cli.h"

#include "forecasts/forecast_gen.h"
#include "trainer/train_params.h"
#include "datasets/sales.h"
#include "trainer/train_data.h"
#include "lib/util.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <libgen.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))
#define OUT_BUFFER ((size_t)8 << 20)
#define MAX_INPUT_FILE ((size_t)256 << 20) /* --promotions, --weather */

static const char *const usage_text =
    "usage: roastery forecast --model DIR --input HISTORY.csv --output FILE|-\n"
    "                         [--start YYYY-MM-DD] [--horizon DAYS] [--promotions FILE]\n"
    "                         [--weather FILE] [--threads N] [--model-version V]\n"
    "\n"
    "Forecasts every store x product of a sales history (the CSV formats `roastery train`\n"
    "reads) with a model saved by `roastery train` (model.json + features.json in DIR), for\n"
    "the days from --start on, and writes CSV with the header\n"
    "  " FORECAST_GEN_CSV_HEADER "\n"
    "one row per store x product x day (ready for COPY ... FROM STDIN (FORMAT csv, HEADER)).\n"
    "\n"
    "  --output        a file (written whole, then renamed into place) or - for stdout\n"
    "  --start         first forecast day (default: the day after the history's last day);\n"
    "                  at most the model's horizon after the last day\n"
    "  --horizon       forecast days, 1 to the model's horizon (the default) less the\n"
    "                  days --start leaves after the history\n"
    "  --promotions    planned promotions: CSV store_id,product,start_date,end_date\n"
    "                  (* = every store / product); none when absent\n"
    "  --weather       weather outlook: CSV city,date,weather (Sunny, Rainy, Snowy, Cloudy,\n"
    "                  Hot, Cold); else the city's most frequent weather of that month\n"
    "  --threads       default: the CPUs this process may use\n"
    "  --model-version echoed in the result event\n"
    "\n"
    "JSON events (log, phase, result) go to stdout, or to stderr with --output -.\n"
    "Exit status: 0 ok, 2 usage error, 3 not enough history for the model's lags,\n"
    "1 other failures, 128 + signal when stopped by SIGTERM or SIGINT.\n";

typedef struct {
    const char *model, *input, *output, *promotions, *weather, *version;
    int32_t start; /* INT32_MIN: default */
    long horizon;  /* 0: default */
    long threads;
} options;

static volatile sig_atomic_t stop_signal;
static FILE *events;

static void on_signal(int sig)
{
    stop_signal = sig;
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("roastery forecast: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs(" (try --help)\n", stderr);
    va_end(ap);
    return FORECAST_CLI_EXIT_USAGE;
}

static void emit(json_t *ev)
{
    char *s = json_dumps(ev, JSON_COMPACT | JSON_REAL_PRECISION(10));
    if (s) {
        fputs(s, events);
        fputc('\n', events);
        fflush(events);
    }
    free(s);
    json_decref(ev);
}

static void log_event(const char *level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void log_event(const char *level, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (events != stderr && (!strcmp(level, "warn") || !strcmp(level, "error")))
        fprintf(stderr, "roastery forecast: %s\n", msg);
    emit(json_pack("{s:s, s:s, s:s}", "event", "log", "level", level, "msg", msg));
}

static void phase_end(const char *name, int64_t since, json_t *extra)
{
    json_t *ev = json_pack("{s:s, s:s, s:s, s:f}", "event", "phase", "phase", name, "state", "end",
                           "seconds", (double)(now_ms_monotonic() - since) / 1000.0);
    if (extra)
        json_object_update(ev, extra);
    json_decref(extra);
    emit(ev);
}

static long cpus(void)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
        return CPU_COUNT(&set);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? n : 1;
}

/* Fills o; returns -1 to go on, else the exit status (0 after --help). */
static int parse_args(int argc, char **argv, options *o)
{
    memset(o, 0, sizeof *o);
    o->start = INT32_MIN;
    o->threads = cpus();
    static const char *const with_value[] = {"--model",   "--input",   "--output",
                                             "--start",   "--horizon", "--promotions",
                                             "--weather", "--threads", "--model-version"};
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
            fputs(usage_text, stdout);
            return 0;
        }
        const char *flag = NULL, *val = NULL;
        for (size_t k = 0; k < COUNT(with_value) && !flag; k++) {
            size_t n = strlen(with_value[k]);
            if (!strcmp(arg, with_value[k])) {
                flag = with_value[k];
                if (i + 1 >= argc)
                    return usage_error("%s needs a value", flag);
                val = argv[++i];
            } else if (!strncmp(arg, with_value[k], n) && arg[n] == '=') {
                flag = with_value[k];
                val = arg + n + 1;
            }
        }
        if (!flag)
            return usage_error("unknown option %s", arg);
        if (!strcmp(flag, "--start")) {
            if (sales_parse_date(val, strlen(val), &o->start))
                return usage_error("--start must be a date YYYY-MM-DD, not '%.40s'", val);
        } else if (!strcmp(flag, "--horizon")) {
            if (parse_long(val, 1, TRAIN_MAX_HORIZON, &o->horizon))
                return usage_error("--horizon must be a whole number of days from 1 to %d",
                                   TRAIN_MAX_HORIZON);
        } else if (!strcmp(flag, "--threads")) {
            if (parse_long(val, 1, 1024, &o->threads))
                return usage_error("--threads must be a whole number from 1 to 1024");
        } else if (!strcmp(flag, "--model-version")) {
            if (!*val || strlen(val) > 200)
                return usage_error("--model-version must have 1 to 200 characters");
            o->version = val;
        } else {
            if (!*val)
                return usage_error("%s needs a path", flag);
            const char **slot = !strcmp(flag, "--model")        ? &o->model
                                : !strcmp(flag, "--input")      ? &o->input
                                : !strcmp(flag, "--output")     ? &o->output
                                : !strcmp(flag, "--promotions") ? &o->promotions
                                                                : &o->weather;
            *slot = val;
        }
    }
    if (!o->model)
        return usage_error("--model is required");
    if (!o->input)
        return usage_error("--input is required");
    if (!o->output)
        return usage_error("--output is required");
    return -1;
}

/* Reads a --promotions or --weather file into in; returns -1 to go on, else
 * the exit status (a usage error naming the flag). */
static int load_inputs(const char *flag, const char *path, forecast_inputs *in)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return usage_error("%s: cannot open %s: %s", flag, path, strerror(errno));
    buf_t b;
    buf_init(&b, MAX_INPUT_FILE);
    char chunk[65536];
    int status = -1;
    for (;;) {
        ssize_t got = read(fd, chunk, sizeof chunk);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            status = usage_error("%s: cannot read %s: %s", flag, path, strerror(errno));
            break;
        }
        if (got == 0)
            break;
        if (buf_append(&b, chunk, (size_t)got)) {
            status = usage_error("%s: %s is larger than %zu MiB", flag, path, MAX_INPUT_FILE >> 20);
            break;
        }
    }
    close(fd);
    if (status < 0) {
        char err[300] = "";
        int rc = !strcmp(flag, "--promotions")
                     ? forecast_inputs_promotions(in, b.data ? b.data : "", b.len, err, sizeof err)
                     : forecast_inputs_weather(in, b.data ? b.data : "", b.len, err, sizeof err);
        if (rc)
            status = usage_error("%s: %s: %s", flag, path, err);
    }
    buf_free(&b);
    return status;
}

/* ---- the output --------------------------------------------------------------------- */

/* Two buffers: rows are formatted into one while a writer thread write(2)s the
 * other, so a reader that is slow for a while (COPY's backend, a full pipe)
 * does not hold up the features and the prediction of the next rows. */
typedef struct {
    int fd;
    char *tmp; /* the temporary name of a file output; NULL for stdout */
    char *buf; /* the buffer being filled */
    size_t len;
    char *spare;    /* the other buffer, while the writer does not hold it */
    uint64_t bytes; /* written (the writer's, read after a handover or the join) */
    int failed;     /* errno of the first failed write */
    int direct;     /* a device or pipe given as --output: fd is ours to close */
    /* the writer thread */
    pthread_t thread;
    int started;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    char *pending; /* handed to the writer; NULL when it is idle */
    size_t pending_len;
    int quit;
} writer;

/* Writes all of data to w->fd; 0 or an errno. A signal that stops the command
 * ends a write blocked on a stalled reader. */
static int write_all(writer *w, const char *data, size_t len, uint64_t *done)
{
    size_t off = 0;
    while (off < len) {
        ssize_t n = write(w->fd, data + off, len - off);
        if (n < 0 && errno == EINTR && !stop_signal)
            continue;
        if (n < 0) {
            *done += off;
            return errno;
        }
        off += (size_t)n;
    }
    *done += off;
    return 0;
}

static void *writer_main(void *arg)
{
    writer *w = arg;
    pthread_mutex_lock(&w->lock);
    for (;;) {
        while (!w->pending && !w->quit)
            pthread_cond_wait(&w->cond, &w->lock);
        if (!w->pending)
            break;
        char *data = w->pending;
        size_t len = w->pending_len;
        int failed = w->failed;
        pthread_mutex_unlock(&w->lock);
        uint64_t done = 0;
        int e = failed ? 0 : write_all(w, data, len, &done);
        pthread_mutex_lock(&w->lock);
        w->bytes += done;
        if (e && !w->failed)
            w->failed = e;
        w->spare = data;
        w->pending = NULL;
        pthread_cond_broadcast(&w->cond);
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

/* Waits until the writer holds no buffer. */
static void writer_idle(writer *w)
{
    pthread_mutex_lock(&w->lock);
    while (w->pending)
        pthread_cond_wait(&w->cond, &w->lock);
    pthread_mutex_unlock(&w->lock);
}

/* Hands the filled buffer to the writer (after it is done with the other one)
 * and goes on with the other. Without a thread, writes here. -1 once a write
 * failed (errno in w->failed). */
static int flush_out(writer *w)
{
    if (!w->started) {
        if (!w->failed)
            w->failed = write_all(w, w->buf, w->len, &w->bytes);
        w->len = 0;
        return w->failed ? -1 : 0;
    }
    pthread_mutex_lock(&w->lock);
    while (w->pending)
        pthread_cond_wait(&w->cond, &w->lock);
    if (w->len && !w->failed) {
        w->pending = w->buf;
        w->pending_len = w->len;
        w->buf = w->spare;
        w->spare = NULL;
        pthread_cond_broadcast(&w->cond);
    }
    w->len = 0;
    int failed = w->failed;
    pthread_mutex_unlock(&w->lock);
    return failed ? -1 : 0;
}

static int write_block(void *arg, const forecast_gen_block *b)
{
    writer *w = arg;
    for (size_t i = 0; i < b->nseries; i++) {
        if (OUT_BUFFER - w->len < (size_t)b->ndays * FORECAST_GEN_MAX_LINE && flush_out(w))
            return -1;
        for (int j = 0; j < b->ndays; j++)
            w->len += forecast_gen_format_row(w->buf + w->len, b, i, j);
    }
    return stop_signal ? -1 : 0;
}

/* Stops and joins the writer thread (after the buffer it holds is written). */
static void writer_stop(writer *w)
{
    if (!w->started)
        return;
    pthread_mutex_lock(&w->lock);
    w->quit = 1;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->lock);
    /* stopped by a signal: the writer may be blocked on a reader that no
     * longer reads; the same signal (our handler, no SA_RESTART) ends its write */
    for (;;) {
        if (!stop_signal) {
            pthread_join(w->thread, NULL);
            break;
        }
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += 100 * 1000 * 1000;
        if (until.tv_nsec >= 1000 * 1000 * 1000) {
            until.tv_sec++;
            until.tv_nsec -= 1000 * 1000 * 1000;
        }
        if (pthread_timedjoin_np(w->thread, NULL, &until) == 0)
            break;
        pthread_kill(w->thread, (int)stop_signal);
    }
    pthread_mutex_destroy(&w->lock);
    pthread_cond_destroy(&w->cond);
    w->started = 0;
}

static int open_output(const char *path, writer *w)
{
    memset(w, 0, sizeof *w);
    w->buf = xmalloc(OUT_BUFFER);
    w->spare = xmalloc(OUT_BUFFER);
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->cond, NULL);
    /* without the thread (it cannot be created), flush_out writes in place */
    w->started = pthread_create(&w->thread, NULL, writer_main, w) == 0;
    if (!w->started) {
        pthread_mutex_destroy(&w->lock);
        pthread_cond_destroy(&w->cond);
    }
    if (!strcmp(path, "-")) {
        w->fd = STDOUT_FILENO;
        return 0;
    }
    /* A device or a pipe (/dev/null, a FIFO) is written in place: renaming a
     * temporary file over it would replace it. */
    struct stat sb;
    if (stat(path, &sb) == 0 && !S_ISREG(sb.st_mode)) {
        if (S_ISDIR(sb.st_mode)) {
            w->failed = EISDIR;
            return -1;
        }
        w->fd = open(path, O_WRONLY | O_CLOEXEC);
        if (w->fd < 0) {
            w->failed = errno;
            return -1;
        }
        w->direct = 1;
        return 0;
    }
    char *copy1 = xstrdup(path), *copy2 = xstrdup(path);
    w->tmp = xasprintf("%s/.%s.part-%ld", dirname(copy1), basename(copy2), (long)getpid());
    free(copy1);
    free(copy2);
    w->fd = open(w->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (w->fd < 0) {
        w->failed = errno;
        return -1;
    }
    return 0;
}

/* Publishes a file output (everything written, fsync, rename). 0 or -1 with
 * errno in w->failed. */
static int commit_output(writer *w, const char *path)
{
    flush_out(w);
    writer_idle(w);
    writer_stop(w);
    if (w->failed)
        return -1;
    if (w->direct) {
        int rc = close(w->fd);
        w->fd = -1;
        w->direct = 0;
        if (rc)
            w->failed = errno;
        return rc ? -1 : 0;
    }
    if (!w->tmp)
        return 0;
    if (fsync(w->fd) || close(w->fd)) {
        w->failed = errno;
        w->fd = -1;
        return -1;
    }
    w->fd = -1;
    if (rename(w->tmp, path)) {
        w->failed = errno;
        return -1;
    }
    free(w->tmp);
    w->tmp = NULL;
    return 0;
}

static void close_output(writer *w)
{
    writer_stop(w);
    if (w->direct && w->fd >= 0)
        close(w->fd);
    if (w->tmp) {
        if (w->fd >= 0)
            close(w->fd);
        unlink(w->tmp);
        free(w->tmp);
    }
    free(w->buf);
    free(w->spare);
    free(w->pending);
    memset(w, 0, sizeof *w);
}

/* ---- the command -------------------------------------------------------------------- */

static int run(const options *o)
{
    int status = FORECAST_CLI_EXIT_FAILED, rc;
    char err[600] = "";
    int64_t t_start = now_ms_monotonic();
    forecast_inputs *in = forecast_inputs_new();
    forecast_gen_model *m = NULL;
    train_data *d = NULL;
    writer w;
    memset(&w, 0, sizeof w);
    w.fd = -1;

    if (o->promotions && (status = load_inputs("--promotions", o->promotions, in)) >= 0)
        goto out;
    if (o->weather && (status = load_inputs("--weather", o->weather, in)) >= 0)
        goto out;
    status = FORECAST_CLI_EXIT_FAILED;

    int64_t t = now_ms_monotonic();
    emit(json_pack("{s:s, s:s, s:s}", "event", "phase", "phase", "load", "state", "start"));
    rc = forecast_gen_model_load(o->model, (int)o->threads, &m, err, sizeof err);
    if (rc) {
        log_event("error", "cannot use the model in %s: %s", o->model, err);
        goto out;
    }
    if (o->horizon > forecast_gen_model_horizon(m)) {
        status = usage_error("--horizon %ld is more than the model's horizon (%d days)", o->horizon,
                             forecast_gen_model_horizon(m));
        goto out;
    }
    log_event("info", "roastery forecast %s: %s model in %s (horizon %d), %ld thread(s)",
              ROASTERY_VERSION, forecast_gen_model_algorithm(m), o->model,
              forecast_gen_model_horizon(m), o->threads);
    train_data_options lo = {.stop = &stop_signal, .skip_sha256 = 1};
    rc = train_data_load(o->input, &lo, &d, err, sizeof err);
    if (rc == RST_EUNAVAIL)
        goto stopped;
    if (rc) {
        log_event("error", "cannot use %s: %s", o->input, err);
        goto out;
    }
    char first[11], last[11];
    sales_format_date(d->first_day, first);
    sales_format_date(d->first_day + d->ndays - 1, last);
    phase_end("load", t,
              json_pack("{s:I, s:I, s:i}", "rows", (json_int_t)d->rows, "series",
                        (json_int_t)d->nseries, "days", (int)d->ndays));
    log_event("info",
              "history: %llu rows, %zu stores x %zu products = %zu series over %d days "
              "(%s to %s)",
              (unsigned long long)d->rows, d->nstores, d->nproducts, d->nseries, (int)d->ndays,
              first, last);

    if (open_output(o->output, &w)) {
        log_event("error", "cannot create %s: %s", o->output, strerror(w.failed));
        goto out;
    }
    static const char header[] = FORECAST_GEN_CSV_HEADER "\n";
    memcpy(w.buf, header, sizeof header - 1);
    w.len = sizeof header - 1;

    t = now_ms_monotonic();
    emit(json_pack("{s:s, s:s, s:s}", "event", "phase", "phase", "generate", "state", "start"));
    forecast_gen_options go = {.start = o->start,
                               .days = (int)o->horizon,
                               .threads = (int)o->threads,
                               .stop = &stop_signal};
    forecast_gen_stats st;
    rc = forecast_gen_run(m, d, in, &go, write_block, &w, &st, err, sizeof err);
    if (rc == FORECAST_GEN_ESTART || rc == FORECAST_GEN_EHORIZON) {
        status = usage_error("%s", err);
        goto out;
    }
    if (rc == FORECAST_GEN_ESHORT) {
        log_event("error", "%s", err);
        status = FORECAST_CLI_EXIT_DATA;
        goto out;
    }
    if (rc == RST_EUNAVAIL || stop_signal)
        goto stopped;
    if (rc == RST_OK)
        commit_output(&w, o->output);
    if (w.failed) {
        log_event("error", "cannot write %s: %s", o->output, strerror(w.failed));
        goto out;
    }
    if (rc) {
        log_event("error", "%s", err);
        goto out;
    }
    char sd[11], od[11];
    sales_format_date(st.start, sd);
    sales_format_date(st.origin, od);
    phase_end("generate", t,
              json_pack("{s:I, s:I}", "rows", (json_int_t)st.rows, "bytes", (json_int_t)w.bytes));
    if (st.promotions_ignored)
        log_event("warn",
                  "ignored %zu promotion row(s) naming a store or product not in the history",
                  st.promotions_ignored);
    if (st.outlook_ignored)
        log_event("warn",
                  "ignored %zu outlook row(s) for a city not in the history or a day not "
                  "forecast",
                  st.outlook_ignored);
    double secs = (double)(now_ms_monotonic() - t_start) / 1000.0;
    if (!strcmp(forecast_gen_model_algorithm(m), "xgboost"))
        log_event("info", "predicted by %s (%llu rows also by XGBoost, the same floats)",
                  st.own_trees ? "roastery's tree evaluator" : "XGBoost",
                  (unsigned long long)st.checked_rows);
    emit(json_pack("{s:s, s:I, s:I, s:s, s:i, s:s?, s:f, s:s, s:s, s:s, s:I, s:I, s:I}", "event",
                   "result", "rows", (json_int_t)st.rows, "series", (json_int_t)st.series, "start",
                   sd, "days", st.days, "model_version", o->version, "seconds", secs, "algorithm",
                   forecast_gen_model_algorithm(m), "model_sha256", forecast_gen_model_sha256(m),
                   "origin", od, "promoted_series_days", (json_int_t)st.promoted_series_days,
                   "outlook_days_used", (json_int_t)st.outlook_used, "bytes", (json_int_t)w.bytes));
    status = FORECAST_CLI_EXIT_OK;
    goto out;
stopped:
    log_event("warn", "stopped by signal %d: no output was published", (int)stop_signal);
    status = 128 + (int)stop_signal;
out:
    close_output(&w);
    train_data_free(d);
    forecast_gen_model_free(m);
    forecast_inputs_free(in);
    return status;
}

int forecast_cli_main(int argc, char **argv)
{
    options o;
    int status = parse_args(argc, argv, &o);
    if (status >= 0)
        return status;
    events = !strcmp(o.output, "-") ? stderr : stdout;
    stop_signal = 0;
    struct sigaction sa, ign, old_term, old_int, old_pipe;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    memset(&ign, 0, sizeof ign);
    ign.sa_handler = SIG_IGN; /* a closed pipe is a write error, not a silent death */
    sigemptyset(&ign.sa_mask);
    sigaction(SIGTERM, &sa, &old_term);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGPIPE, &ign, &old_pipe);
    status = run(&o);
    sigaction(SIGTERM, &old_term, NULL);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGPIPE, &old_pipe, NULL);
    return status;
}
