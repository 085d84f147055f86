"""Evaluation harness: 22 video benchmarks + the toy suite, sharded over a Slurm array, resumable per sample.

Run (one Slurm array, then an aggregation job depending on it)::

    python jobs/submit.py stage=eval model=<HF dir> benchmarks=[videomme,mvbench] \\
        annotations_dir=<folder of annotation files> video_root=<folder of video folders> \\
        cluster=slurm num_shards=8

Score saved predictions without a model::

    python -m eval_harness score benchmark=vsibench annotations=vsibench.json predictions=preds.jsonl out=results.json

Layout: ``benchmarks/`` (one spec per benchmark: file, prompt wording, checks, official aggregation),
``records`` (validated, keyed records), ``shard`` (cost-balanced slices), ``inference`` + ``engines``
(asynchronous pipeline), ``predictions`` (append-only JSONL), ``scoring`` + ``aggregate`` (the training
reward, official metrics), ``judge`` (optional LLM judge), ``report`` + ``official`` (results.json,
report.md, bar chart, officially reported scores), ``stage`` / ``aggregate_stage`` (launcher stages),
``benchmark`` (asynchronous vs sequential inference). See README.md and FORMAT.md.
"""
