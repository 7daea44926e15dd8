"""Benchmarks: the two pytest plugins and the ``gpubench bench`` verb.

Holds ``plugin`` (entry point ``pytest11`` ``gpubench``: one test per configured device, configuration,
machine info, case time limits, atomic saves) and ``telemetry_plugin`` (``gpubench_telemetry``: a
telemetry sampler around every benchmark, its summary in ``extra_info``, the throughput table), which
pytest loads in every session of the environment, and ``command`` (``gpubench bench``: the suite in
``bench/`` through ``pytest.main``, or a full MNIST training run); the plugin's helpers ``internals`` (the
pytest-benchmark internals it checks at start), ``compare_gate`` (``--gpubench-compare-fail``), ``saves``
(all-or-nothing saves of a run) and ``target_table`` (the targets table it prints). May import
config, devices, results, comparison, telemetry, workloads and timing; never the CLI or the report.
Imports nothing itself, so loading one plugin does not load the other.
"""
