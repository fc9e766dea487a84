"""The statistical validation suite: simulated worlds with known truth, simulation-based
calibration, recovery, exact agreement and Monte Carlo error (`suite.py`), run by `make validate`
and `scripts/run_validation.py`, reported in docs/validation.md. Not part of the installed package:
it drives krsim through its public interface like any user of the library."""
