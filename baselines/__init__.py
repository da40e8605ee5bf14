"""meterwatch's domain core: billing cycles, readings into consumption, habit
profiles, alert rules and the offline backtest. Pure Python: no Kafka, Faust,
Redis or HTTP imports.

Entry point: ``baselines.engine.Engine`` (see docs/INTERFACES.md; the modules behind it:
docs/baselines.md).
"""
