#!/usr/bin/python3
"""Python references for bench/train, with the same XGBoost library.

  train_reference.py quality FEATURES_DUMP
      Reads the exact matrices `roastery train --dump-features` wrote (train,
      valid, backtest), trains XGBoost with the same parameters and early
      stopping on the same validation rows, predicts the backtest rows and
      prints one JSON line: WAPE, best iteration, training seconds.

  train_reference.py pipeline SALES_CSV HORIZON BACKTEST_DAYS THREADS [NUM_ROUND]
      The same job as `roastery train` written the usual way: pandas read_csv,
      groupby to daily store x product series (zero-filled), the same feature
      definitions in numpy/pandas, XGBoost train + predict. Prints one JSON
      line with the seconds and peak RSS of each phase.
"""
import json
import resource
import sys
import time

import numpy as np
import xgboost as xgb


def peak_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def read_dump(path):
    with open(path, "rb") as f:
        if f.read(8) != b"RSTFEAT1":
            raise SystemExit("not a roastery features dump")
        hlen = int.from_bytes(f.read(8), "little")
        hdr = json.loads(f.read(hlen))
        offset = 16 + hlen
    nf = len(hdr["features"])
    sets = {}
    for s in hdr["sets"]:
        rows = s["rows"]
        x = np.memmap(path, dtype="<f4", mode="r", offset=offset, shape=(rows, nf))
        offset += rows * nf * 4
        y = np.memmap(path, dtype="<f4", mode="r", offset=offset, shape=(rows,))
        offset += rows * 4
        sets[s["name"]] = (np.asarray(x), np.asarray(y))
    return hdr, sets


def booster_params(p):
    return {"tree_method": "hist", "objective": p["objective"], "eta": p["eta"],
            "max_depth": p["max_depth"], "subsample": p["subsample"],
            "colsample_bytree": p["colsample_bytree"], "min_child_weight": p["min_child_weight"],
            "lambda": p["lambda"], "alpha": p["alpha"], "max_bin": p["max_bin"],
            "nthread": p["nthread"], "seed": p["seed"], "eval_metric": ["rmse", "mae"]}


def fit(p, names, types, xtr, ytr, xva, yva):
    """QuantileDMatrix for training, as roastery does; early stopping on valid-mae."""
    dtr = xgb.QuantileDMatrix(xtr, ytr, feature_names=names, feature_types=types,
                              enable_categorical=True, max_bin=p["max_bin"], nthread=p["nthread"])
    dva = xgb.DMatrix(xva, yva, feature_names=names, feature_types=types,
                      enable_categorical=True, nthread=p["nthread"])
    return xgb.train(booster_params(p), dtr, p["num_round"], evals=[(dva, "valid")],
                     early_stopping_rounds=p["early_stopping_rounds"], verbose_eval=False)


def wape(y, f):
    return float(np.abs(y - f).sum() / np.abs(y).sum())


def quality(path):
    hdr, sets = read_dump(path)
    p, names, types = hdr["params"], hdr["features"], hdr["types"]
    t = time.perf_counter()
    b = fit(p, names, types, *sets["train"], *sets["valid"])
    train_s = time.perf_counter() - t
    xb, yb = sets["backtest"]
    db = xgb.DMatrix(xb, feature_names=names, feature_types=types, enable_categorical=True)
    pred = np.maximum(b.predict(db, iteration_range=(0, b.best_iteration + 1)), 0)
    print(json.dumps({"wape": wape(yb, pred), "best_iteration": b.best_iteration,
                      "train_seconds": train_s, "rows": int(len(sets["train"][1]))}))


# ---- the pandas pipeline ------------------------------------------------------------

class Phases:
    """Seconds and peak RSS per phase; the peak is reset at each start (as roastery does)."""

    def __init__(self):
        self.out = {}

    def run(self, name, fn):
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
        except OSError:
            pass
        t = time.perf_counter()
        res = fn()
        hwm = 0
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    hwm = int(line.split()[1]) / 1024.0
        self.out[name] = {"seconds": time.perf_counter() - t, "rss_mib": hwm}
        return res


CANONICAL = {"date": "date", "store id": "store_id", "store_id": "store_id", "country": "country",
             "city": "city", "product category": "category", "category": "category",
             "product": "product", "quantity sold": "quantity", "quantity": "quantity",
             "price": "unit_price", "unit_price": "unit_price", "total sale": "total",
             "total": "total", "weather": "weather", "promotion": "promotion",
             "holiday": "holiday"}
WEATHER = ["", "Sunny", "Rainy", "Snowy", "Cloudy", "Hot", "Cold"]
CATEGORY = ["Coffee", "Pastry", "Beverage", "Merchandise"]
COUNTRY = ["USA", "Canada", "Mexico"]


def load(csv):
    import pandas as pd
    df = pd.read_csv(csv, keep_default_na=False)
    df.columns = [CANONICAL[c.strip().lower()] for c in df.columns]
    day = pd.to_datetime(df["date"]).values.astype("datetime64[D]").astype(np.int64)
    d0 = int(day.min())
    df["d"] = day - d0
    stores, si = np.unique(df["store_id"].values, return_inverse=True)
    products, pi = np.unique(df["product"].values, return_inverse=True)
    df["si"], df["pi"] = si, pi
    df["promo"] = (df["promotion"].values == "Yes").astype(np.float32)
    df["hol"] = (df["holiday"].values == "Yes").astype(np.float32)
    df["w"] = pd.Categorical(df["weather"], categories=WEATHER).codes.astype(np.float32)
    # one value per store x product x day (duplicates summed), then dense, zero-filled
    g = df.groupby(["si", "pi", "d"], sort=False).agg(
        qty=("quantity", "sum"), price=("unit_price", "first"), promo=("promo", "max"))
    sd = df.groupby(["si", "d"], sort=False).agg(promo=("promo", "max"), hol=("hol", "max"),
                                                  w=("w", "first"))
    pairs = np.unique(si * len(products) + pi)
    series_of = np.full(len(stores) * len(products), -1)
    series_of[pairs] = np.arange(len(pairs))
    D, N, S = int(df["d"].max()) + 1, len(pairs), len(stores)
    idx = g.index.to_frame().values
    row = series_of[idx[:, 0] * len(products) + idx[:, 1]]
    Y = np.zeros((N, D), np.float32)
    Y[row, idx[:, 2]] = g["qty"].values
    PR = np.full((N, D), np.nan, np.float32)
    PR[row, idx[:, 2]] = g["price"].values
    PR = pd.DataFrame(PR.T).ffill().bfill().values.T.astype(np.float32)
    PM = np.full((N, D), np.nan, np.float32)
    PM[row, idx[:, 2]] = g["promo"].values
    sidx = sd.index.to_frame().values
    SPM = np.zeros((S, D), np.float32)
    SPM[sidx[:, 0], sidx[:, 1]] = sd["promo"].values
    HOL = np.zeros((S, D), np.float32)
    HOL[sidx[:, 0], sidx[:, 1]] = sd["hol"].values
    WEA = np.zeros((S, D), np.float32)
    WEA[sidx[:, 0], sidx[:, 1]] = sd["w"].values
    s_of = pairs // len(products)
    p_of = pairs % len(products)
    PM = np.where(np.isnan(PM), SPM[s_of], PM)
    first = df.drop_duplicates("si").set_index("si")
    city = pd.factorize(first.loc[np.arange(S), "city"], sort=True)[0]
    country = first.loc[np.arange(S), "country"].map({c: i for i, c in enumerate(COUNTRY)}).values
    pfirst = df.drop_duplicates("pi").set_index("pi")
    cat = pfirst.loc[np.arange(len(products)), "category"].map(
        {c: i for i, c in enumerate(CATEGORY)}).values
    return dict(Y=Y, PR=PR, PM=PM, HOL=HOL, WEA=WEA, s_of=s_of, p_of=p_of, city=city,
                country=country, cat=cat, d0=d0, rows=len(df))


def features(data, h):
    """The trainer's 46 features (docs/trainer.md), vectorised; -1 = missing."""
    import pandas as pd
    Y, N = data["Y"], data["Y"].shape[0]
    D = Y.shape[1]
    s_of = data["s_of"]
    c = 7 * ((h + 6) // 7)

    def shift(a, k):
        out = np.full(a.shape, np.nan, np.float32)
        if k < a.shape[1]:
            out[:, k:] = a[:, :a.shape[1] - k]
        return out

    def rmean(a, w):
        cs = np.concatenate([np.zeros((a.shape[0], 1)), np.cumsum(a, 1, dtype=np.float64)], 1)
        out = np.full(a.shape, np.nan, np.float32)
        out[:, w - 1:] = (cs[:, w:] - cs[:, :-w]) / w
        return out

    def rmedian(w):
        return pd.DataFrame(Y.T).rolling(w).median().values.T.astype(np.float32)

    f = {}
    for k in range(h, h + 7):
        f[f"lag_{k}"] = shift(Y, k)
    for k in (1, 2, 3):
        f[f"lag_{c + 7 * k}"] = shift(Y, c + 7 * k)
    f["same_weekday_mean_4"] = sum(shift(Y, c + 7 * k) for k in range(4)) / 4
    for w in (7, 28, 84):
        f[f"mean_{w}"] = shift(rmean(Y, w), h)
    f["median_7"], f["median_28"] = shift(rmedian(7), h), shift(rmedian(28), h)
    cs = np.concatenate([np.zeros((N, 1)), np.cumsum(Y, 1, dtype=np.float64)], 1)
    cs2 = np.concatenate([np.zeros((N, 1)), np.cumsum(Y.astype(np.float64) ** 2, 1)], 1)
    var = np.full((N, D), np.nan)
    s1, s2 = cs[:, 28:] - cs[:, :-28], cs2[:, 28:] - cs2[:, :-28]
    var[:, 27:] = np.maximum((s2 - s1 * s1 / 28) / 27, 0)
    f["std_28"] = shift(np.sqrt(var).astype(np.float32), h)
    f["lag_364"] = shift(Y, 364)
    f["ly_mean_7c"] = shift(rmean(Y, 7), 361)
    f["ly_mean_28"] = shift(rmean(Y, 28), h + 364)
    with np.errstate(divide="ignore", invalid="ignore"):
        f["ly_growth"] = np.where(f["ly_mean_28"] > 0, f["mean_28"] / f["ly_mean_28"], np.nan)
    f["ly_projection"] = f["ly_mean_7c"] * f["ly_growth"]
    days = pd.to_datetime(data["d0"] + np.arange(D), unit="D")
    cal = {"day_of_week": days.dayofweek.values, "day_of_month": days.day.values,
           "week_of_year": days.isocalendar().week.values.astype(int),
           "month": days.month.values, "day_of_year": days.dayofyear.values,
           "year_index": days.year.values - days.year.values[0]}
    for k, v in cal.items():
        f[k] = np.broadcast_to(v.astype(np.float32), (N, D))
    HOL = data["HOL"]
    nxt, lst = np.full(HOL.shape, 7, np.float32), np.full(HOL.shape, 7, np.float32)
    for k in range(7, -1, -1):  # nearest holiday within a week, either way
        ahead = np.zeros(HOL.shape, bool)
        ahead[:, :D - k] = HOL[:, k:] > 0
        nxt[ahead] = k
        back = np.zeros(HOL.shape, bool)
        back[:, k:] = HOL[:, :D - k] > 0
        lst[back] = k
    f["holiday"], f["days_to_holiday"], f["days_since_holiday"] = HOL[s_of], nxt[s_of], lst[s_of]
    f[f"holiday_lag_{c}"], f["holiday_lag_364"] = shift(HOL[s_of], c), shift(HOL[s_of], 364)
    PM = data["PM"]
    f["promotion"], f[f"promotion_lag_{c}"] = PM, shift(PM, c)
    f["promotion_share_28"] = shift(rmean(PM, 28), h)
    PR = data["PR"]
    f["price"] = PR
    with np.errstate(divide="ignore", invalid="ignore"):
        f["price_ratio_28"] = PR / shift(rmean(PR, 28), 1)
    numeric = list(f)
    WEA = data["WEA"]
    f["weather"], f[f"weather_lag_{c}"] = WEA[s_of], shift(WEA[s_of], c)
    doy = np.broadcast_to(days.dayofyear.values.astype(np.float32), (N, D))
    f["holiday_name"] = np.where(f["holiday"] > 0, doy, 0)  # no calendar names in Python
    f["store"] = np.broadcast_to(s_of[:, None].astype(np.float32), (N, D))
    f["product"] = np.broadcast_to(data["p_of"][:, None].astype(np.float32), (N, D))
    f["category"] = np.broadcast_to(data["cat"][data["p_of"]][:, None].astype(np.float32), (N, D))
    f["city"] = np.broadcast_to(data["city"][s_of][:, None].astype(np.float32), (N, D))
    f["country"] = np.broadcast_to(data["country"][s_of][:, None].astype(np.float32), (N, D))
    names = list(f)
    types = ["q" if n in numeric else "c" for n in names]
    tf = h + 27
    X = np.empty(((D - tf) * N, len(names)), np.float32)  # day by day, as roastery
    for j, n in enumerate(names):
        col = f.pop(n)[:, tf:].T.reshape(-1)
        if types[j] == "q":
            col = np.where(np.isnan(col), np.float32(-1), col)
        X[:, j] = col
    return names, types, X, Y[:, tf:].T.reshape(-1).copy(), tf


def pipeline(csv, h, backtest, threads, params):
    ph = Phases()
    data = ph.run("load", lambda: load(csv))
    names, types, X, y, tf = ph.run("features", lambda: features(data, h))
    N, D = data["Y"].shape
    V = max(h, 28)
    w0 = D - backtest
    v0 = w0 - V

    def rows(a, b):
        return slice((a - tf) * N, (b - tf) * N)

    p = {"objective": "reg:tweedie", "eta": 0.2, "max_depth": 8, "num_round": 1000,
         "subsample": 0.8, "colsample_bytree": 0.8, "min_child_weight": 1, "lambda": 1,
         "alpha": 0, "max_bin": 256, "early_stopping_rounds": 30, "nthread": threads, "seed": 42}
    p.update(params)
    b = ph.run("train", lambda: fit(p, names, types, X[rows(tf, v0)], y[rows(tf, v0)],
                                    X[rows(v0, w0)], y[rows(v0, w0)]))

    def score():
        db = xgb.DMatrix(X[rows(w0, D)], feature_names=names, feature_types=types,
                         enable_categorical=True, nthread=threads)
        pred = np.maximum(b.predict(db, iteration_range=(0, b.best_iteration + 1)), 0)
        Y = data["Y"]
        sn = np.empty((D - w0, N), np.float32)
        for t in range(w0, D):
            o = w0 - 1 + ((t - w0) // h) * h
            sn[t - w0] = Y[:, t - 7 * ((t - o + 6) // 7)]
        actual = y[rows(w0, D)]
        return wape(actual, pred), wape(actual, sn.reshape(-1))

    w, w_sn = ph.run("backtest", lambda: score())
    print(json.dumps({"phases": ph.out, "rows": data["rows"], "series": N, "days": D,
                      "wape": w, "wape_seasonal_naive": w_sn, "best_iteration": b.best_iteration,
                      "peak_rss_mib": max(v["rss_mib"] for v in ph.out.values())}))


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "quality":
        quality(sys.argv[2])
    elif len(sys.argv) >= 6 and sys.argv[1] == "pipeline":
        pipeline(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]),
                 json.loads(sys.argv[6]) if len(sys.argv) > 6 else {})
    else:
        raise SystemExit(__doc__)
