#!/usr/bin/env bash
# A Slurm job array converting one folder of photos in N shards, then merging the shard reports.
#   sbatch --array=1-8 examples/slurm_batch.sh /data/photos /data/heads
#   sbatch --dependency=afterany:<array job id> --wrap ".venv/bin/facesmith batch-merge /data/heads"
# Each array task takes a deterministic subset (every N-th head), so tasks may run anywhere, in any order,
# and a rerun skips heads that are already complete. Exit 1 from a task means some of its heads failed;
# the merged batch_report.json lists them.
#SBATCH --job-name=facesmith
#SBATCH --cpus-per-task=2
#SBATCH --mem=4G
#SBATCH --time=04:00:00
set -euo pipefail
input=$1
output=$2
shards=${SLURM_ARRAY_TASK_COUNT:?run as an array: sbatch --array=1-N}
cd "${FACESMITH_DIR:-$(dirname "$0")/..}"
exec .venv/bin/facesmith batch "$input" "$output" --shard "${SLURM_ARRAY_TASK_ID}/${shards}" --no-preview
