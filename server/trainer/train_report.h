/* What the trainer tells the process that runs it: one JSON object per line
 * on stdout, flushed after each line (log, phase, metric and result events),
 * with the time and peak memory of each phase. */
#ifndef ROASTERY_TRAIN_REPORT_H
#define ROASTERY_TRAIN_REPORT_H

#include <jansson.h>
#include <stddef.h>
#include <stdio.h>

/* Events go to out (stdout unless changed; borrowed, must outlive the calls). */
void train_report_set_stream(FILE *out);

/* {"event":"log","level":level,"msg":...}; the message is also echoed to stderr
 * for "warn" and "error". */
void train_report_log(const char *level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* {"event":"metric","step":step,"name":name,"value":value}; NaN is skipped. */
void train_report_metric(int step, const char *name, double value);

/* {"event":"result","metrics":metrics}. metrics is borrowed. */
void train_report_result(json_t *metrics);

/* Phases: start emits {"event":"phase","phase":name,"state":"start"}; end emits
 * "end" with "seconds" and "rss_mib" (the peak resident size during the phase
 * where the kernel can reset the peak, else since the start), and extra
 * (stolen, may be NULL) merged in. */
void train_report_phase_start(const char *name);
void train_report_phase_end(const char *name, json_t *extra);

/* Peak resident set size since the last phase start, in MiB (VmHWM). Since
 * each phase start resets the kernel's peak, the process's own VmHWM and
 * ru_maxrss only cover the last phase: use train_report_phases for the run. */
double train_report_peak_rss_mib(void);

/* new: {"load": {"seconds", "rss_mib"}, ..., "peak_rss_mib": the largest}
 * for the phases ended since the start (or train_report_reset). */
json_t *train_report_phases(void);

/* Forgets the phases (one process may run the trainer more than once). */
void train_report_reset(void);

#endif
