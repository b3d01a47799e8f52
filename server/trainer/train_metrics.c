/* Accuracy sums. */
#include "trainer/train_metrics.h"

#include <math.h>

void train_metrics_add(train_metrics *m, double y, double f, double lo80, double hi80, double lo95,
                       double hi95)
{
    double e = fabs(y - f);
    m->abs_err += e;
    m->abs_y += fabs(y);
    m->sq_err += (y - f) * (y - f);
    m->signed_err += f - y;
    m->sum_y += y;
    if (y != 0) {
        m->ape += e / fabs(y);
        m->n_ape++;
    }
    if (fabs(y) + fabs(f) > 0)
        m->smape += 2 * e / (fabs(y) + fabs(f));
    m->n++;
    m->in80 += y >= lo80 && y <= hi80;
    m->in95 += y >= lo95 && y <= hi95;
}

void train_metrics_merge(train_metrics *a, const train_metrics *b)
{
    a->abs_err += b->abs_err;
    a->abs_y += b->abs_y;
    a->sq_err += b->sq_err;
    a->signed_err += b->signed_err;
    a->sum_y += b->sum_y;
    a->ape += b->ape;
    a->smape += b->smape;
    a->n += b->n;
    a->n_ape += b->n_ape;
    a->in80 += b->in80;
    a->in95 += b->in95;
}

double train_metrics_wape(const train_metrics *m)
{
    return m->abs_y > 0 ? m->abs_err / m->abs_y : NAN;
}

static json_t *num(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

json_t *train_metrics_json(const train_metrics *m)
{
    double n = (double)m->n;
    return json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:I}", "wape", num(train_metrics_wape(m)),
                     "mape", num(m->n_ape ? m->ape / (double)m->n_ape : NAN), "smape",
                     num(m->n ? m->smape / n : NAN), "rmse", num(m->n ? sqrt(m->sq_err / n) : NAN),
                     "bias", num(m->sum_y != 0 ? m->signed_err / m->sum_y : NAN), "coverage80",
                     num(m->n ? (double)m->in80 / n : NAN), "coverage95",
                     num(m->n ? (double)m->in95 / n : NAN), "n", (json_int_t)m->n);
}
