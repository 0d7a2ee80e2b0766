"""What this machine's CPU can compute quickly, read from `/proc/cpuinfo` (no torch import)."""

from __future__ import annotations

from pathlib import Path

BF16_FLAGS = ("amx_bf16", "avx512_bf16")
CPUINFO = Path("/proc/cpuinfo")


def native_bf16(cpuinfo: str | None = None) -> bool:
    """True when the CPU has bfloat16 matrix instructions (AMX or AVX512-BF16). Without them
    torch runs bfloat16 products emulated: 1.5 GFLOP/s against float32's 110 on an AVX2-only
    AMD EPYC (2 cores, 2026-12-07)."""
    if cpuinfo is None:
        cpuinfo = CPUINFO.read_text() if CPUINFO.is_file() else ""
    flags = set(cpuinfo.split())
    return any(flag in flags for flag in BF16_FLAGS)


def cpu_precision(setting: str, cpuinfo: str | None = None) -> str:
    """What training on this CPU computes in for a `precision` setting: the setting itself, or
    for "auto" bfloat16 where the CPU multiplies it natively and float32 elsewhere."""
    if setting != "auto":
        return setting
    return "bfloat16" if native_bf16(cpuinfo) else "float32"
