/* Promotions carried out: promotion.evaluate records each gate with its
 * figure, threshold and verdict (metrics present; beats seasonal-naive by
 * the project's margin; champion/challenger on the same latest backtest
 * window), and promotion.deploy moves the alias and deploys the version
 * with the configured executor. */
#ifndef ROASTERY_PROMOTION_OPS_H
#define ROASTERY_PROMOTION_OPS_H

#include "artifacts/artifacts.h"
#include "core/config.h"

/* Registers both kinds. Pointers borrowed; they must outlive the workers. */
void promotion_ops_register(const config *cfg, artifact_store *store);

#endif
