#!/usr/bin/env bash
# Regenerates road.net.xml and road.fcd.xml from the hand-written inputs
# (road.nod.xml, road.edg.xml, road.rou.xml, road.sumocfg) with SUMO 1.15,
# then prints the x range seen for each vehicle in the FCD trace.
set -euo pipefail
cd "$(dirname "$0")"

# Debian keeps SUMO's data (XML schemas, type maps) here; setting it silences
# the "SUMO_HOME is not set" warnings and avoids schema look-ups on the web.
export SUMO_HOME="${SUMO_HOME:-/usr/share/sumo}"

netconvert --node-files road.nod.xml --edge-files road.edg.xml \
    --output-file road.net.xml

sumo -c road.sumocfg \
    --seed 1 \
    --no-step-log \
    --device.fcd.period 1 \
    --fcd-output road.fcd.xml \
    --fcd-output.attributes x,y,speed

# SUMO writes the wall-clock time into the header comment of every output
# file, and has no switch to turn that off. Replace it with a fixed text so
# that reruns give byte-identical files.
for f in road.net.xml road.fcd.xml; do
    sed -i -E '1,5s/generated on [0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2} by/generated on (time removed by make.sh) by/' "$f"
done

# Per vehicle: number of samples, first/last time and x, min/max x and speed.
awk '
    /<timestep time=/ { match($0, /time="[^"]*"/); t = substr($0, RSTART + 6, RLENGTH - 7) }
    /<vehicle / {
        match($0, /id="[^"]*"/);    id = substr($0, RSTART + 4, RLENGTH - 5)
        match($0, / x="[^"]*"/);    x  = substr($0, RSTART + 4, RLENGTH - 5) + 0
        match($0, /speed="[^"]*"/); v  = substr($0, RSTART + 7, RLENGTH - 8) + 0
        if (!(id in n)) { order[++k] = id; t0[id] = t; x0[id] = x; xmin[id] = x; xmax[id] = x; vmax[id] = v }
        n[id]++; t1[id] = t; x1[id] = x
        if (x < xmin[id]) xmin[id] = x
        if (x > xmax[id]) xmax[id] = x
        if (v > vmax[id]) vmax[id] = v
    }
    END {
        for (i = 1; i <= k; i++) {
            id = order[i]
            printf "%s: %d samples, t=%s..%s, x=%.2f..%.2f (first %.2f, last %.2f), max speed %.2f m/s\n",
                id, n[id], t0[id], t1[id], xmin[id], xmax[id], x0[id], x1[id], vmax[id]
        }
    }
' road.fcd.xml
