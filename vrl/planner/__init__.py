"""Memory planner: bytes per GPU of a train config before anything waits in a queue.

Pure functions from a config and a model's ``config.json`` shapes to bytes: :mod:`shapes` (the config
file), :mod:`tensors` (every parameter as the engines hold it), :mod:`model_memory` (parameters,
gradients, optimizer state per engine and layout), :mod:`activations` (one micro-batch's forward and
backward), :mod:`rollout` (the colocated vLLM), :mod:`workload` (sequence lengths from the media
budget), :mod:`plan` (phases, verdict, the nearest layout that fits), :mod:`report` and :mod:`stage`
(``python jobs/submit.py stage=plan``; the check before ``stage=train cluster=slurm``).
"""
