# Summary of one column of a soak sample series, after the warm-up.
# Input: whitespace-separated lines, time in seconds in column 1 (lines starting with # are
# skipped). Variables: col (the column), warmup (seconds; samples with t < warmup are left
# out), band (the flatness band, a fraction, e.g. 0.10), scale (divide values by it, e.g.
# 1024 for KiB -> MiB).
# Prints one JSON object: samples, first (the first sample after warm-up), min, max, last,
# mean, slope_per_h (least squares, units per hour), spread (max - min) / min, and
# flat: true when max <= min * (1 + band).
/^#/ { next }
NF >= col && $1 >= warmup {
    v = $col / (scale ? scale : 1); t = $1 / 3600
    n++; if (n == 1) { first = v; min = v; max = v }
    if (v < min) min = v; if (v > max) max = v
    last = v; sv += v; st += t; stt += t * t; stv += t * v
}
END {
    if (n == 0) { print "{ \"samples\": 0 }"; exit }
    mean = sv / n; d = n * stt - st * st
    slope = (d > 0) ? (n * stv - st * sv) / d : 0
    spread = (min > 0) ? (max - min) / min : 0
    printf "{ \"samples\": %d, \"first\": %.2f, \"min\": %.2f, \"max\": %.2f, \"last\": %.2f, \"mean\": %.2f, \"slope_per_h\": %.3f, \"spread\": %.4f, \"flat\": %s }\n",
        n, first, min, max, last, mean, slope, spread, (max <= min * (1 + band) + 1e-9) ? "true" : "false"
}
