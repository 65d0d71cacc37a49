#!/usr/bin/env bash
# The GPU run of benchmarks/gpu.py: on one CUDA GPU, no internet, under 10 minutes,
# images/s of the CIFAR-10 training step at batch 128 (fp32, bf16 autocast, channels_last,
# torch.compile; AdamW and EMA overhead) and the digits preset's time to 95% confident.
#   bash benchmarks/gpu.sh            # the GPU run
#   bash benchmarks/gpu.sh --smoke    # the same code on the CPU at tiny sizes (~1 minute)
# PYTHON picks the interpreter (default: .venv/bin/python, else python3).
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -z "${PYTHON:-}" ]]; then
  if [[ -x .venv/bin/python ]]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
exec "$PYTHON" benchmarks/gpu.py "$@"
