#!/usr/bin/env bash
# A short check of the `gpu` profile on a CUDA machine that has PyTorch but not our notebook stack.
#
# It installs the carried wheels (.whl/: papermill, nbclient, nbconvert, ipykernel, pydicom and
# their dependencies, for the machine's Python), runs one experiment with the gpu profile's
# settings except for the budgets given below (so the whole run fits in a few minutes), and
# copies the report, metrics.json, run.json and the log to $OUT (or ./gpu_check_out).
# The result is a check that every code path of the profile runs on CUDA (bf16 autocast, 64 px,
# full-width networks), with its step times; it is not a published report (its budgets are cut).
#
# Usage: scripts/gpu_check.sh EXPERIMENT DATA_DIR [-p NAME=VALUE ...]
set -uo pipefail
exp=${1:?experiment name, e.g. 01_bagan_blood_cells}
data=${2:?data folder, e.g. .gpudata}
shift 2
out=${OUT:-gpu_check_out}
mkdir -p "$out"
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PATH=/tmp/site/bin:$PATH JUPYTER_PATH=/tmp/site/share/jupyter
fi
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())" | tee -a "$out/gpu.txt"
python3 -m medgan_core.cli run "$exp" --profile gpu --data-dir "$data" --out /tmp/gpu_reports --no-progress "$@" \
  2>&1 | tee "$out/log.txt"
rc=$?
folder=/tmp/gpu_reports/$exp/gpu
for f in run.json metrics.json params.json; do [ -f "$folder/$f" ] && cp "$folder/$f" "$out/"; done
html=$(ls "$folder"/*.reader.html 2>/dev/null | head -1)
[ -n "$html" ] && cp "$html" "$out/report.html"
exit $rc
