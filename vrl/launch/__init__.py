"""Launching stages through submitit: local processes, Slurm (jobs, arrays, multi-node) or in process."""
