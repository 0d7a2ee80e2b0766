"""The diagnosis phase: what went wrong in a run, with evidence and a proposed config patch.

    from phases.diagnosis import diagnose_run
    diagnoses = diagnose_run(config=cfg, log_history=history, data_report=report,
                             evaluation={"base": {...}, "tuned": {...}}, predictions=preds)

Pure and light: only `probe_generation` loads a model (inside the call).
"""

from phases.diagnosis.diagnose import diagnose_run, read_json, read_rows
from phases.diagnosis.probe import closes_turn, probe_generation
from phases.diagnosis.results import (
    SEVERITY_RANK,
    Diagnosis,
    DiagnosisKind,
    Route,
    Severity,
)

__all__ = [
    "SEVERITY_RANK",
    "Diagnosis",
    "DiagnosisKind",
    "Route",
    "Severity",
    "closes_turn",
    "diagnose_run",
    "probe_generation",
    "read_json",
    "read_rows",
]
