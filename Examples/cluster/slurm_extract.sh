#!/bin/bash
# DINOv2 features for a WebDataset (tar shards) as a Slurm job array: one array task per shard.
#
#   sbatch Examples/cluster/slurm_extract.sh                       # the 64 shards
#   sbatch --dependency=afterok:JOBID --wrap "dino extract merge $OUT"   # then the index
#
# Every task runs the same command. dino reads its shard from SLURM_ARRAY_TASK_ID and the number
# of shards from SLURM_ARRAY_TASK_COUNT (or SLURM_ARRAY_TASK_MIN/MAX), so the array range alone
# decides the sharding: --array=0-63 gives shards 0/64 ... 63/64. --resume makes a task that is
# requeued (preemption, node failure) or resubmitted continue where it stopped.
#
#SBATCH --job-name=dino-extract
#SBATCH --array=0-63%16
#SBATCH --cpus-per-task=8
#SBATCH --mem=8G
#SBATCH --time=04:00:00
#SBATCH --requeue
#SBATCH --output=logs/dino-extract-%A_%a.log

set -euo pipefail

# Inputs, outputs and model: a folder on a file system every node sees. Give the model as a
# folder (or pre-fill the Hugging Face cache and set HF_HUB_OFFLINE=1) so that 64 tasks do not
# download it at once. The output folder is shared by all tasks; each writes its own files.
DATA=${DATA:-/datasets/my-webdataset}
OUT=${OUT:-/scratch/$USER/dino-features}
MODEL=${MODEL:-/models/dinov2-with-registers-small}

mkdir -p "$OUT" logs

# exec: dino receives Slurm's SIGTERM itself (time limit, scancel, preemption), finishes the
# batch in progress, records what is done and exits 143; --resume continues from there.
exec dino extract \
    --model "$MODEL" \
    --size 224x224 \
    --threads "${SLURM_CPUS_PER_TASK:-8}" \
    --batch-size 32 \
    "$DATA/shards/{00000..01023}.tar" \
    --output-dir "$OUT" \
    --resume
