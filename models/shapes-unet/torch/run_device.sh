#!/bin/bash
# The run that made stage 8 on a lent GPU machine (one H100, 16 cores, no network; PyTorch there): 120,000
# scenes from the TS generator (gen.mjs; NODE: a node binary, carried there), then three trainings side by side
# on the one GPU. Stage 8 is run c. Needs `npm run build` (packages/shapes/dist), INIT (stage 7: this folder at
# commit 9d30e21), INIT_WIDE (grow.mjs's output from INIT for 256,128,64,32,24) and OUT.
# Usage: OUT=DIR INIT=DIR INIT_WIDE=DIR [NODE=node] [MINUTES=6.5] bash run_device.sh
cd "$(dirname "$0")" || exit 1
NODE=${NODE:-node}
nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv,noheader
t0=$(date +%s)
for i in $(seq 0 15); do "$NODE" gen.mjs "/tmp/tr$i.bin" 5151 train $((i * 7500)) 7500 & done
"$NODE" gen.mjs /tmp/sel.bin 99 segment-select 0 300 &
"$NODE" gen.mjs /tmp/f30.bin 424242 segment-fresh-val 0 30 &
"$NODE" gen.mjs /tmp/f200.bin 424243 segment-fresh-val 0 200 &
wait
echo "generated in $(($(date +%s) - t0)) s"
DATA=$(ls /tmp/tr*.bin | paste -sd,)
common="--data $DATA --select /tmp/sel.bin --evals fresh30=/tmp/f30.bin,fresh200=/tmp/f200.bin --minutes ${MINUTES:-6.5}"
python3 train_unet.py train --init "$INIT" --decoder 128,64,32,24,16 --lr 2e-3 --batch 128 --seed 1 $common \
  --out "$OUT/a" >/tmp/a.log 2>&1 &
python3 train_unet.py train --init "$INIT_WIDE" --decoder 256,128,64,32,24 --lr 2e-3 --batch 128 --seed 2 $common \
  --out "$OUT/b" >/tmp/b.log 2>&1 &
python3 train_unet.py train --init "$INIT_WIDE" --decoder 256,128,64,32,24 --lr 4e-3 --batch 256 --seed 3 $common \
  --out "$OUT/c" >/tmp/c.log 2>&1 &
wait
for r in a b c; do echo "== $r"; grep -v "img/s" "/tmp/$r.log" | tail -14; grep "img/s" "/tmp/$r.log" | tail -2; done
echo "total $(($(date +%s) - t0)) s"
