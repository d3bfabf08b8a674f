#!/usr/bin/env bash
# Prints the path of a libclang that RocksDB's bindings (clang-sys, through
# bindgen) will accept, or exits 1 when there is none.
#
# It searches what clang-sys 1.9 searches on Linux when linking without its
# `runtime` feature, which is how librocksdb-sys builds here:
#   - only `$LIBCLANG_PATH` when that is set (a directory, or the file itself);
#   - otherwise `llvm-config --prefix`/{lib,lib64}, `$LD_LIBRARY_PATH`,
#     `$LIBRARY_PATH`, then /usr/local/llvm*/lib*, /usr/local/lib*{,/*,/*/*}
#     and /usr/lib*{,/*,/*/*};
# for files named `libclang.so` or `libclang-*.so`, skipping `libclang-cpp*`:
# that is Clang's C++ library, which Debian ships without the C library
# (package libclang-cpp14 has /usr/lib/llvm-14/lib/libclang-cpp.so.14 and no
# libclang.so), and clang-sys rejects it.
#
# Usage: find-libclang.sh [ROOT]   ROOT prefixes the default directories (tests)
set -uo pipefail
shopt -s nullglob

root="${1:-}"

accept() { # $1: a file path; succeeds when clang-sys would take it
  local name
  name="$(basename "$1")"
  [[ "$name" == *-cpp.* || "$name" == libclang-cpp* ]] && return 1
  [[ "$name" == libclang.so || "$name" == libclang-*.so ]] || return 1
  [ -e "$1" ]
}

search_dir() { # $1: a directory; prints the first acceptable library in it
  local f
  [ -d "$1" ] || return 1
  for f in "$1"/libclang.so "$1"/libclang-*.so; do
    if accept "$f"; then
      echo "$f"
      return 0
    fi
  done
  return 1
}

if [ -n "${LIBCLANG_PATH:-}" ]; then
  if [ -f "$LIBCLANG_PATH" ] && accept "$LIBCLANG_PATH"; then
    echo "$LIBCLANG_PATH"
    exit 0
  fi
  search_dir "$LIBCLANG_PATH" && exit 0
  echo "LIBCLANG_PATH=$LIBCLANG_PATH holds no libclang.so or libclang-*.so" >&2
  exit 1
fi

dirs=()
if [ -z "$root" ] && command -v llvm-config >/dev/null 2>&1; then
  prefix="$(llvm-config --prefix 2>/dev/null | head -n1)"
  [ -n "$prefix" ] && dirs+=("$prefix/lib" "$prefix/lib64")
fi
if [ -z "$root" ]; then
  IFS=: read -r -a extra <<<"${LD_LIBRARY_PATH:-}:${LIBRARY_PATH:-}"
  dirs+=("${extra[@]}")
fi
dirs+=("$root"/usr/local/llvm*/lib* "$root"/usr/local/lib*/*/* "$root"/usr/local/lib*/* "$root"/usr/local/lib*)
dirs+=("$root"/usr/lib*/*/* "$root"/usr/lib*/* "$root"/usr/lib*)

for d in "${dirs[@]}"; do
  [ -n "$d" ] || continue
  search_dir "$d" && exit 0
done
exit 1
