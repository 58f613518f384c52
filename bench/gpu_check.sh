#!/usr/bin/env bash
# One pass over every CUDA path on one GPU: throughput with bf16 autocast and torch.compile for each demo, and the
# lm GPU preset end to end (nanoGPT's shakespeare_char setting). Each step has its own time limit.
#
#   TRENDS_DATA=/path/to/data bash bench/gpu_check.sh [LOG_DIR]
#
# TRENDS_DATA needs tinyshakespeare/input.txt, Cora/raw/ and cifar10_jpg/{train,test}/ (or the full CIFAR-10).
set -uo pipefail
log_dir=${1:-outputs/gpu_check}
mkdir -p "$log_dir"
export PYTHONUNBUFFERED=1 TRENDS_OUTPUTS=${TRENDS_OUTPUTS:-$log_dir/runs}
py=${PYTHON:-python3}
step() {  # step SECONDS NAME COMMAND...
  local limit=$1 name=$2; shift 2
  echo "=== $name: $*"
  local tic=$SECONDS
  timeout -s INT -k 15 "$limit" "$@" > "$log_dir/$name.log" 2>&1
  echo "=== $name: exit $? after $((SECONDS - tic)) s"
  tail -n 25 "$log_dir/$name.log"
}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
step 200 lm_preset $py -m trends lm experiment=shakespeare_gpu
step 70 bench_lm $py bench/lm.py --device cuda --skip-quality
step 70 bench_vit $py bench/vit_vs_cnn.py experiment=cifar10_gpu --steps 30
step 70 bench_contrastive $py bench/contrastive.py --device cuda --no-loader
step 45 gnn $py -m trends gnn experiment=gpu
step 100 vit_short $py -m trends vit-vs-cnn experiment=cifar10_gpu data=imagefolder "data.path=$TRENDS_DATA/cifar10_jpg" \
  "data.fractions=[1.0]" train.steps=600 train.eval_every=600 train.checkpoint_every=600
# Paper-scale targets on the full CIFAR-10 copy (cifar10_jpg_full: 50k + 10k), when there is one:
# ResNet-18 ≥ 93 % and ViT ≥ 80 % (≈ 8 min on an H100), and SimCLR's kNN against lightly's 0.848 after 200 epochs.
if [ -d "$TRENDS_DATA/cifar10_jpg_full" ]; then
  step 600 vit_full $py -m trends vit-vs-cnn experiment=cifar10_gpu data=imagefolder \
    "data.path=$TRENDS_DATA/cifar10_jpg_full" "data.fractions=[1.0]"
  step 600 simclr_full $py -m trends contrastive experiment=cifar10_resnet18 data=imagefolder \
    "data.path=$TRENDS_DATA/cifar10_jpg_full" train.epochs=${SIMCLR_EPOCHS:-40} eval.knn_every=5 eval.supervised.epochs=0
fi
