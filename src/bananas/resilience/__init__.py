"""Chaos experiments and resilience reports (issue 11, plan task 9.3): ``bananas chaos
run EXPERIMENT.toml`` drives a workload against workers it starts (or ones already
running), injects faults over time, checks the steady state from a ledger kept outside
Bananas and writes a JSON and a self-contained HTML report. See docs/CHAOS.md."""
