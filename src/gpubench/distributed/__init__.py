"""Distributed runs: ``torchrun … -m gpubench verify|bench`` on one node or many, one rank per GPU, each
rank verifying or benchmarking its ``LOCAL_RANK`` device and sending its result to rank 0, which merges every
host and GPU into one run (keyed by host, rank and GPU UUID) and alone writes ``results/``. Modules, in
import order: ``collectives`` (bandwidth of all-reduce and friends), ``ddp`` (DDP scaling), ``stragglers``
(the straggler rule), ``options`` (the ``--dist-*`` options), ``launch`` (torchrun's variables, the process
group, barriers and naming ranks), ``merge`` (gathering on rank 0 and the merged run), ``files`` (what rank
0 writes), ``summary`` (what rank 0 prints), ``rank`` (one rank's run, phase by phase), ``command``
(``add_arguments``, ``run``, ``main``: what the CLI calls). This package may import config, devices, nvml,
timing, workloads, verify, results and console; it never imports the CLI, and nothing here is imported by
the packages below it.
"""
