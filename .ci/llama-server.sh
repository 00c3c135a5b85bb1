#!/usr/bin/env bash
# Print the path of a llama-server binary for the tests of the llama-server backend. Built once,
# CPU only, from the llama.cpp sources that the installed llama-cpp-python's sdist vendors (its
# sdist comes from PyPI; the web UI and everything else that would be fetched are off), and kept
# in ~/.cache/leeroo-local; about 10-20 minutes on 2 cores the first time. Usage: llama-server.sh [PYTHON]
set -euo pipefail
py=${1:-python}
version=$("$py" -c "import llama_cpp; print(llama_cpp.__version__)")
cache="${XDG_CACHE_HOME:-$HOME/.cache}/leeroo-local/llama-server-$version"
bin="$cache/llama-server"
if [ ! -x "$bin" ]; then
  work=$(mktemp -d "${TMPDIR:-/tmp}/llama-server.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  "$py" -m pip download -q --no-deps --no-binary=:all: -d "$work" "llama-cpp-python==$version" >&2
  tar xzf "$work"/llama_cpp_python-*.tar.gz -C "$work"
  src=$(echo "$work"/llama_cpp_python-*/vendor/llama.cpp)
  cmake -S "$src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=OFF \
    -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_OPENSSL=OFF \
    -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DBUILD_SHARED_LIBS=OFF >&2
  cmake --build "$work/build" --target llama-server -j"$(nproc)" >&2
  mkdir -p "$cache"
  cp "$work/build/bin/llama-server" "$bin.partial" && mv "$bin.partial" "$bin"
fi
echo "$bin"
