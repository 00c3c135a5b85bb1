#!/usr/bin/env bash
# The GPU check in one device run (issue: the GPU path on a real GPU). On a machine with an
# NVIDIA GPU and no package registry: installs the wheels carried in .whl/ (what the image lacks),
# builds llama-cpp-python with CUDA for that GPU only from the sdist carried in .sdist/, then runs
# the GPU-marked tests and bench/gpu_check.py. The build is cached in .gpu-build/ (kept between
# calls of one lease); it runs detached, so a call that times out leaves it going for the next.
# Results go to $OUT (else bench/results/).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-bench/results}; mkdir -p "$OUT"
CACHE=$PWD/.gpu-build; mkdir -p "$CACHE/site" "$CACHE/wheel"
PY=${PY:-python3}
export PYTHONPATH=$PWD:$CACHE/site PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used --format=csv | tee "$OUT/nvidia-smi.txt"
if [ ! -f "$CACHE/site/.deps" ]; then
  $PY -m pip install -q --no-index --no-deps --no-compile --upgrade --target "$CACHE/site" .whl/*.whl \
    && touch "$CACHE/site/.deps" || exit 1
fi
have_cuda() { $PY -c "import numpy, llama_cpp, sys; sys.exit(0 if llama_cpp.llama_supports_gpu_offload() else 1)" 2>/dev/null; }
if ! have_cuda; then
  pidf=$CACHE/build.pid
  if [ ! -f "$pidf" ] || ! kill -0 "$(cat "$pidf")" 2>/dev/null; then
    export CMAKE_ARGS="-DGGML_CUDA=on -DCMAKE_CUDA_ARCHITECTURES=90 -DLLAVA_BUILD=OFF -DGGML_NATIVE=ON -DGGML_OPENMP=OFF"
    export CMAKE_BUILD_PARALLEL_LEVEL=$(nproc)
    setsid bash -c "start=\$(date +%s); $PY -m pip wheel -v --no-deps --no-build-isolation --no-index \
      -w '$CACHE/wheel' -C build-dir='$CACHE/build' .sdist/llama_cpp_python-*.tar.gz \
      && $PY -m pip install -q --no-deps --no-index --upgrade --target '$CACHE/site' '$CACHE'/wheel/llama_cpp_python-*.whl; \
      echo \$? > '$CACHE/build.rc'; echo build_s=\$((\$(date +%s)-start)) >> '$CACHE/build.rc'" \
      > "$CACHE/build.log" 2>&1 &
    echo $! > "$pidf"
  fi
  while kill -0 "$(cat "$pidf")" 2>/dev/null; do sleep 5; done
  tail -n 60 "$CACHE/build.log" > "$OUT/build-tail.log"; cat "$CACHE/build.rc"
  have_cuda || { echo "CUDA build failed"; tail -n 40 "$CACHE/build.log"; exit 1; }
fi
cp "$CACHE/build.rc" "$OUT/build.rc" 2>/dev/null
$PY -m pytest -q -m gpu tests/test_gpu.py -p no:cacheprovider -o addopts="-ra" 2>&1 | tee "$OUT/pytest-gpu.txt"
$PY bench/gpu_check.py --out "$OUT/gpu_check.json" 2>&1 | tee "$OUT/gpu_check.txt"
