# A hand-written SVG for the soak scripts: RSS (top) and open fds (bottom) over time.
# Input: lines "T_S RSS_KB FDS [SERIES]" (lines starting with # are skipped); with a 4th
# column, one line per series (in order of appearance; _ in its name is shown as a space)
# and a legend; the flatness band is drawn only for a single series.
# Variables: title, subtitle, footer, warmup (seconds, shaded and excluded), band (the
# flatness band, a fraction: 0.10 draws min .. min * 1.10 of the samples after warm-up).
function esc(s) { gsub(/&/, "\\&amp;", s); gsub(/</, "\\&lt;", s); gsub(/>/, "\\&gt;", s); return s }
function xs(t) { return left + t / tmax * pw }
function nice(v,   e, m) { e = 10 ^ int(log(v) / log(10)); m = v / e; return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * e }
/^#/ { next }
NF >= 3 { n++; t[n] = $1; r[n] = $2 / 1024; f[n] = $3
    sr[n] = (NF >= 4) ? $4 : "-"; if (!(sr[n] in seen)) { seen[sr[n]] = ++ns; sname[ns] = sr[n] }
    if ($1 > tmax) tmax = $1
    if (r[n] > rmax) rmax = r[n]
    if (f[n] > fmax) fmax = f[n]
    if ($1 >= warmup) { if (rmin == "" || r[n] < rmin) rmin = r[n] }
}
END {
    if (tmax <= 0) tmax = 1
    split("#2a7ab0 #c0504d #8aa04a #e07b00", col, " ")
    w = 820; h = 600; left = 80; pw = 700
    printf "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"14\">\n", w, h, w, h
    printf "<rect width=\"100%%\" height=\"100%%\" fill=\"#ffffff\"/>\n"
    printf "<text x=\"20\" y=\"32\" font-size=\"18\" font-weight=\"bold\">%s</text>\n", esc(title)
    printf "<text x=\"20\" y=\"54\" fill=\"#555\">%s</text>\n", esc(subtitle)
    # time axis: minutes
    tstep = nice(tmax / 60 / 8) * 60
    for (panel = 1; panel <= 2; panel++) {
        top = (panel == 1) ? 80 : 380; ph = (panel == 1) ? 250 : 140
        vmax = (panel == 1) ? rmax * 1.2 : fmax * 1.25 + 1
        step = nice(vmax / 5)
        printf "<rect x=\"%d\" y=\"%d\" width=\"%.1f\" height=\"%d\" fill=\"#f3f3f3\"/>\n", left, top, xs(warmup) - left, ph
        for (v = 0; v <= vmax; v += step) {
            yy = top + ph - v / vmax * ph
            printf "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#e4e4e4\"/>\n", left, yy, left + pw, yy
            printf "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\" font-size=\"12\" fill=\"#555\">%s</text>\n", left - 6, yy + 4, (panel == 1) ? v " MiB" : v
        }
        for (tt = 0; tt <= tmax; tt += tstep) {
            printf "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#999\"/>\n", xs(tt), top + ph, xs(tt), top + ph + 4
            printf "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\" font-size=\"12\" fill=\"#555\">%d min</text>\n", xs(tt), top + ph + 18, tt / 60
        }
        printf "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#999\"/>\n", left, top + ph, left + pw, top + ph
        if (panel == 1 && rmin != "" && ns == 1) {
            y1 = top + ph - rmin * (1 + band) / vmax * ph; y0 = top + ph - rmin / vmax * ph
            printf "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#2e7d32\" fill-opacity=\"0.12\"/>\n", xs(warmup), y1, left + pw - xs(warmup), y0 - y1
            printf "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" fill=\"#2e7d32\" text-anchor=\"end\">+%d%% of the minimum after warm-up</text>\n", left + pw - 4, y1 - 4, band * 100
        }
        printf "<text x=\"%.1f\" y=\"%d\" font-size=\"11\" fill=\"#777\">warm-up</text>\n", left + 4, top + 14
        printf "<text x=\"20\" y=\"%d\" font-weight=\"bold\">%s</text>\n", top - 6, (panel == 1) ? "RSS" : "open file descriptors"
        for (k = 1; k <= ns; k++) {
            pts = ""
            for (i = 1; i <= n; i++) if (sr[i] == sname[k]) pts = pts sprintf("%.1f,%.1f ", xs(t[i]), top + ph - ((panel == 1) ? r[i] : f[i]) / vmax * ph)
            colour = (ns == 1) ? ((panel == 1) ? "#2a7ab0" : "#c0504d") : col[k]
            printf "<polyline points=\"%s\" fill=\"none\" stroke=\"%s\" stroke-width=\"1.6\"/>\n", pts, colour
            if (ns > 1 && panel == 1) {
                label = sname[k]; gsub(/_/, " ", label)
                printf "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"%s\" stroke-width=\"3\"/>\n", left + 90 + (k - 1) * 230, top - 11, left + 114 + (k - 1) * 230, top - 11, colour
                printf "<text x=\"%d\" y=\"%d\" font-size=\"12\">%s</text>\n", left + 120 + (k - 1) * 230, top - 7, esc(sname[k])
            }
        }
    }
    printf "<text x=\"20\" y=\"%d\" fill=\"#555\" font-size=\"12\">%s</text>\n", h - 14, esc(footer)
    printf "</svg>\n"
}
