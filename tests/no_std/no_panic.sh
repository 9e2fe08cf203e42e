#!/usr/bin/env bash
# Builds the no_std crate in release and fails if its compiled code can reach a panic: every
# symbol its object code calls or references is listed (`nm`, from binutils, which the linker
# needs anyway), and none may be a panic, a failed bounds check, an unwrap or an allocation.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build -p seqmodel-no-std --release --locked
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && ar x "$OLDPWD/target/release/libseqmodel_no_std.rlib")
undefined="$(nm -C "$tmp"/*.o | awk '$1 == "U" { $1 = ""; print }')"
echo "symbols the no_std model's code reaches outside itself:"
echo "$undefined"
if echo "$undefined" | grep -Ei 'panic|fail|bounds_check|unwrap|expect|alloc|unreachable'; then
  echo "error: the no_std model's step can panic or allocate (symbols above)" >&2
  exit 1
fi
