"""Response examples for the OpenAPI document, trimmed from a real quickstart run.

Kept apart from `api.schemas` so the models stay readable; `tests/api/test_openapi.py` checks
that each example validates against the model it illustrates.
"""

from __future__ import annotations

from typing import Any

RUN_ID = "3d3b70c9259c"
RUN_DIR = f"/srv/finetune-agent/runs/{RUN_ID}"
MODEL_PATH = f"{RUN_DIR}/final"
DATA_HASH = "8d565793f80ee1d140e32488eea352a598b1e6bd2daed4023566c6001a420371"
METRICS = {
    "base": {"rougeL": 0.0, "bleu": 0.0, "exact_match": 0.0, "perplexity": 2202.98},
    "tuned": {"rougeL": 0.6458, "bleu": 0.7495, "exact_match": 0.0, "perplexity": 1.5719},
}

INTERRUPT: dict[str, Any] = {
    "id": "78a70e1e1d697f388f5cececed5b91bd",
    "kind": "approve_plan",
    "message": (
        "Plan: SFT on builtin:tiny-llama with 216 training examples, about 216 steps. Approve?"
    ),
    "details": {
        "model": "builtin:tiny-llama",
        "method": "sft",
        "lora": None,
        "data_report": {"kind": "chat", "train_rows": 216, "eval_rows": 24, "warnings": []},
        "estimate": {"total_steps": 216, "steps_per_epoch": 27, "seconds": 13.5},
    },
    "options": ["approve", "reject", "edit"],
}

RUN_SUMMARY: dict[str, Any] = {
    "id": RUN_ID,
    "name": "quickstart",
    "status": "completed",
    "interrupted": False,
    "current_node": "orchestrator",
    "pending_interrupt": None,
    "error": None,
    "model_path": MODEL_PATH,
    "run_dir": RUN_DIR,
    "parent_run_id": None,
    "created_at": "2026-11-22T05:04:33.866404+00:00",
    "updated_at": "2026-11-22T05:04:49.164767+00:00",
}

RUN_WAITING: dict[str, Any] = {
    **RUN_SUMMARY,
    "id": "d15663495116",
    "status": "awaiting_approval",
    "current_node": "gate_plan",
    "model_path": None,
    "run_dir": "/srv/finetune-agent/runs/d15663495116",
    "pending_interrupt": INTERRUPT,
}

DECISION = {
    "gate": "approve_plan",
    "decision": "approve",
    "patch": None,
    "comment": "looks good",
    "time": "2026-11-22T05:04:37+00:00",
    "iteration": 1,
}

RUN_DETAIL: dict[str, Any] = {
    **RUN_SUMMARY,
    "decisions": [DECISION],
    "metrics": METRICS,
    "thresholds_passed": True,
    "training": {
        "status": "completed",
        "global_step": 216,
        "total_steps": 216,
        "resumed_from_step": 108,
        "train_loss": 0.389,
        "message": "Training completed: 216 steps.",
    },
    "data": {
        "kind": "chat",
        "format": "messages",
        "train_rows": 216,
        "eval_rows": 24,
        "data_hash": DATA_HASH,
        "report_path": f"{RUN_DIR}/data/data_report.json",
    },
    "routing": [
        {
            "next": "data_generator",
            "reason": "the seed data has not been validated and split yet",
            "iteration": 1,
        },
        {"next": "__end__", "reason": "the model is registered", "iteration": 1},
    ],
    "outcome_reason": None,
    "iteration": 1,
    "iterations": [],
}

CANCELLED = {"id": RUN_ID, "status": "cancelled", "message": "cancelled"}

DECISION_ACCEPTED = {
    "run_id": "d15663495116",
    "interrupt_id": INTERRUPT["id"],
    "status": "queued",
}

ARTIFACTS = {
    "data": [
        {"path": "config.json", "size": 2284, "modified": "2026-11-22T05:04:33.866355Z"},
        {"path": "data/train.jsonl", "size": 37726, "modified": "2026-11-22T05:04:37.958452Z"},
        {
            "path": "evaluation/evaluation_report.md",
            "size": 2210,
            "modified": "2026-11-22T05:04:49.116297Z",
        },
    ],
    "count": 3,
}

REPORT = {
    "run_id": RUN_ID,
    "markdown": "# Evaluation report\n\n**Result: PASSED**\n\n| metric | base | tuned | delta |\n",
    "report": {"passed": True, "base": {"metrics": METRICS["base"]}},
}

MODEL = {
    "id": "675c7933fda7",
    "run_id": RUN_ID,
    "path": MODEL_PATH,
    "base_model": "builtin:tiny-llama",
    "config_hash": "20e9154b6aeefb6f7975a67001316f166a90886b050298daa9b71238135d0187",
    "data_hash": DATA_HASH,
    "metrics": METRICS["tuned"],
    "created_at": "2026-11-22T05:04:49.156361Z",
    "name": "tuned",
    "kind": "model",
    "relation": "finetune",
    "parent_ids": [],
    "operation": "sft (LoRA), LoRA merged",
    "parameters": {"method": "sft", "lora": {"r": 16, "alpha": 32}, "epochs": 1},
    "format": "safetensors",
    "sha256": "9d1f6c0e3b0d4a4f8f9f2a7f1c6e5b4a3d2c1b0a99887766554433221100ffee",
    "bytes": 538090408,
    "evaluation": {
        "metrics": METRICS["tuned"],
        "parent": "base model",
        "parent_metrics": METRICS["base"],
        "deltas": {k: round(v - METRICS["base"][k], 4) for k, v in METRICS["tuned"].items()},
    },
    "verdict": "pass",
    "verdict_reason": "met its thresholds",
    "alias": "candidate",
}

QUANTIZED_MODEL = {
    **MODEL,
    "id": "b81f0c2d9e7a",
    "path": RUN_DIR + "/post_training/gguf-q8_0/model-q8_0.gguf",
    "name": "gguf:q8_0",
    "kind": "gguf",
    "relation": "quantized",
    "parent_ids": [MODEL["id"]],
    "operation": "gguf:q8_0",
    "parameters": {"library": "gguf", "type": "q8_0", "format": "gguf"},
    "format": "gguf",
    "sha256": "2b7e0f4c5d6a7b8c9d0e1f2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e",
    "bytes": 144810720,
    "evaluation": {
        "metrics": METRICS["tuned"],
        "parent": MODEL["id"],
        "parent_metrics": METRICS["tuned"],
        "deltas": {name: 0.0 for name in METRICS["tuned"]},
        "retention": {"rougeL": 1.0},
        "kl": 0.0011,
        "top1": 0.986,
        "same_answers": 1.0,
        "tokens_per_second": 41.5,
        "bits_per_weight": 8.61,
    },
    "verdict": "pass",
    "verdict_reason": "retention >= 100.0% (needs 99%), KL 0.0011 <= 0.002",
    "alias": "champion",
}

GENERATED = {
    "model_id": MODEL["id"],
    "generation_id": "0b6f1c2d9e8a4f5b8c7d6e5f4a3b2c1d",
    "text": '{"name": "Anna", "age": 31, "city": "Oslo"}',
    "prompt_tokens": 24,
    "completion_tokens": 19,
    "chat_template": True,
}

UPLOADED = {"path": "/srv/finetune-agent/data/uploads/train.jsonl", "size": 37726}

HEALTH = {"status": "ok", "database": "sqlite", "workers": 1, "queued_jobs": 0}


_LATENCY = {"count": 42, "mean": 0.31, "p50": 0.27, "p90": 0.52, "p99": 0.88, "max": 0.91}
STATS = {
    "runs": {
        "total": 5,
        "by_status": {"completed": 3, "failed": 1, "awaiting_approval": 1},
        "by_method": {"sft": 3, "prompt": 2},
        "ended_seconds": {
            "count": 4,
            "mean": 212.5,
            "p50": 180.0,
            "p90": 410.0,
            "p99": 410.0,
            "max": 410.0,
        },
        "training_steps": 188,
        "steps_by_method": {"sft": 60, "prompt": 128},
    },
    "gates": {
        "answered": 9,
        "waiting": 1,
        "wait_seconds": {
            "count": 9,
            "mean": 64.2,
            "p50": 12.0,
            "p90": 300.0,
            "p99": 300.0,
            "max": 300.0,
        },
        "by_gate": {
            "approve_plan": {
                "asked": 5,
                "answered": 4,
                "decisions": {"approve": 4},
                "wait_seconds": {
                    "count": 4,
                    "mean": 20.0,
                    "p50": 12.0,
                    "p90": 45.0,
                    "p99": 45.0,
                    "max": 45.0,
                },
            },
        },
    },
    "interactions": {
        "total": 42,
        "by_source": {"api": 30, "chat": 12},
        "by_model": {MODEL["id"]: 42},
        "latency_seconds": _LATENCY,
        "prompt_tokens": 1260,
        "completion_tokens": 798,
    },
    "feedback": {"total": 7, "up": 4, "down": 2, "better_answers": 1, "comments": 3},
}


def examples(*values: dict[str, Any]) -> dict[str, Any]:
    """`json_schema_extra` for a model: its examples, as OpenAPI 3.1 lists them."""
    return {"examples": list(values)}
