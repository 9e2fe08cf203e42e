#!/usr/bin/env bash
# What a one-character edit of an inline model costs: builds a small crate with the lm-gru
# benchmark model inline in `seqmodel!`, then changes one character of the model (a unit
# count) and times the rebuild (`cargo build`, debug profile, as while editing).
#   bash bench/rebuild_cost.sh [rounds]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
rounds="${1:-5}"
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
mkdir -p "$dir/src"
cat > "$dir/Cargo.toml" <<TOML
[package]
name = "rebuild-cost"
version = "0.0.0"
edition = "2024"
publish = false

[dependencies]
seqmodel = { path = "$root/seqmodel" }

[workspace]
TOML
model="$(cat "$root/bench/models/lm_gru.seq")"
write() { # $1: the units of the last GRU
  printf 'seqmodel::seqmodel! {\n%s\n}\n\nfn main() {\n    println!("{}", LmGru::PARAMS);\n}\n' \
    "$(sed "s/GRU(128/GRU($1/" <<<"$model")" > "$dir/src/main.rs"
}
export CARGO_TARGET_DIR="$root/target/rebuild-cost"
write 120
(cd "$dir" && cargo build -q)
for i in $(seq 1 "$rounds"); do
  write $((120 + i % 2))  # one character differs from the last build
  start=$(date +%s.%N)
  (cd "$dir" && cargo build -q)
  end=$(date +%s.%N)
  echo "rebuild $i: $(echo "$end - $start" | bc) s"
done
