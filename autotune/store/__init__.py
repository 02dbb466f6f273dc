"""autotune's own tables beside Optuna's (decision 5): spec snapshots, per-trial metrics and
artifacts, hardware fingerprints, latency probes and Pareto-front snapshots."""
