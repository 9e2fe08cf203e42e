#!/usr/bin/env bash
# Seeds each fuzz target's corpus from the repository's examples and ../shared's conformance
# files (run from the repository root: `bash fuzz/seed-corpus.sh`).
set -euo pipefail
cd "$(dirname "$0")/.."
for t in seq_frontend seq_run keras_import npy safetensors; do mkdir -p "fuzz/corpus/$t"; done
cp examples/*.seq tests/models/errors/*.seq fuzz/corpus/seq_frontend/
# seq_run reads its first byte as the run-time length of symbolic dimensions.
for f in examples/*.seq bench/models/*.seq; do
  [ -f "$f" ] && { printf '\x03'; cat "$f"; } > "fuzz/corpus/seq_run/$(basename "$f")"
done
for d in ../shared/conformance/* ../shared/conformance-layers/*; do
  [ -d "$d" ] || continue
  n=$(basename "$d")
  [ -f "$d/model.keras" ] && cp "$d/model.keras" "fuzz/corpus/keras_import/$n.keras"
  [ -f "$d/model.h5" ] && cp "$d/model.h5" "fuzz/corpus/keras_import/$n.h5"
  for f in "$d"/*.npy; do [ -f "$f" ] && cp "$f" "fuzz/corpus/npy/$n-$(basename "$f")"; done
done
chmod -R u+w fuzz/corpus
# Weight files as `seqc import --weights` writes them.
for n in dense_one_to_one many_to_one_lstm autoencoder_nested; do
  cargo run -q -p seqc -- import "../shared/conformance/$n/model.keras" -o "/tmp/fuzz-$n.seq" \
    --weights "fuzz/corpus/safetensors/$n.safetensors" --force
done
