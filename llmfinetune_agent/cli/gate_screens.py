"""The CLI's gate screens: each gate's payload as a short summary a person can decide from.

One renderer per gate kind (`SCREENS`), built only from the payload the gate sends (the API
and `--json` show the same payload in full). Numbers are rounded for reading, times read
"1 min 20 s", memory "1.2 GB", and text stays on one line per field. The question is not part
of the screen: the prompt asks it once, with the options' keys and the default answer.

Try it: `finetune-agent run configs/quickstart.json` in a terminal.
"""

from __future__ import annotations

from typing import Any

from rich.console import Group, RenderableType
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from llmfinetune_agent.cli.readable import (
    compact_json,
    fmt_change,
    fmt_duration,
    fmt_memory,
    fmt_number,
    one_line,
)

TITLES = {
    "approve_plan": "plan",
    "approve_data": "training data",
    "training_checkpoint": "training checkpoint",
    "approve_evaluation": "evaluation",
    "approve_fixes": "debugger's fixes",
    "approve_release": "release",
}
EXAMPLES_SHOWN = 3  # one worst, one best, one random row
SAMPLE_SHOWN = 2


def split_question(message: str) -> tuple[str, str | None]:
    """A gate message as (what it says, the question it asks), e.g. ('Plan: ….', 'Approve?').
    The question is the last sentence ending in '?' and anything after it."""
    mark = message.rfind("?")
    if mark < 0:
        return message.strip(), None
    start = max(message.rfind(". ", 0, mark), message.rfind(": ", 0, mark))
    start = 0 if start < 0 else start + 2
    statement = message[:start].strip()
    return statement, message[start:].strip()


# --- answers ----------------------------------------------------------------------------


def option_keys(options: list[str]) -> str:
    """'[a]pprove / [r]eject / [e]dit': each option with the key that answers it."""
    return " / ".join(f"[{o[0]}]{o[1:]}" for o in options)


def parse_choice(text: str, options: list[str]) -> str | None:
    """The option a typed answer names (its first letter or the word), else None."""
    text = text.strip().lower()
    return next((o for o in options if text in (o, o[0])), None) if text else None


def default_answer(pending: dict[str, Any]) -> str:
    """What Enter answers: the payload's own `default`; else reject at an evaluation that
    missed its thresholds, edit at a fixes gate with nothing proposed, approve otherwise."""
    options = pending.get("options") or ["approve", "reject", "edit"]
    details = pending.get("details") or {}
    chosen = pending.get("default")
    if chosen not in options:
        chosen = "approve"
        if pending.get("kind") == "approve_evaluation" and details.get("passed") is False:
            chosen = "reject"
        elif pending.get("kind") == "approve_fixes" and not details.get("proposed_patch"):
            chosen = "edit"
    return chosen if chosen in options else options[0]


def question(pending: dict[str, Any], fallback: str = "Your decision?") -> str:
    """The gate's question, asked once at the prompt (`fallback` when its message asks none)."""
    return split_question(pending.get("message") or "")[1] or fallback


# --- screens ----------------------------------------------------------------------------


def gate_screen(pending: dict[str, Any], *, config: dict[str, Any] | None = None) -> Group:
    """The summary of a pending gate (without its question). `config`, when given, adds the
    training schedule to the plan gate."""
    kind = pending.get("kind") or "gate"
    details = pending.get("details") or {}
    statement = split_question(pending.get("message") or "")[0]
    title = f"⏸ {TITLES.get(kind, kind)} · {kind}"
    parts: list[RenderableType] = [Rule(title, align="left", style="cyan")]
    render = SCREENS.get(kind)
    body = render(details, config or {}) if render else [_fields(_scalars(details))]
    if kind == "approve_evaluation" and details.get("passed") is False:
        parts.append(Text(f"✗ {statement}", style="bold red"))
    elif statement:
        parts.append(Text(statement, style="bold"))
    parts.extend(body)
    return Group(*parts)


def _fields(rows: list[tuple[str, str]]) -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="dim", no_wrap=True)
    grid.add_column(overflow="fold")
    for label, value in rows:
        grid.add_row(label, value)
    return grid


def _scalars(details: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (key, one_line(fmt_number(value)))
        for key, value in details.items()
        if not isinstance(value, (dict, list))
    ]


def _table(*columns: str) -> Table:
    table = Table(*columns, box=None, pad_edge=False, padding=(0, 2), header_style="bold")
    for column in table.columns[1:]:
        column.justify = "right"
    return table


def _plan(details: dict[str, Any], config: dict[str, Any]) -> list[RenderableType]:
    report, estimate = details.get("data_report") or {}, details.get("estimate") or {}
    rows = [("model", str(details.get("model"))), ("method", _method(details))]
    training = config.get("training")
    if training:
        rows.append(("schedule", schedule_line(training)))
    rows.append(("data", _data_line(report)))
    if report.get("token_stats"):
        rows.append(("tokens", _tokens_line(report)))
    rows.append(("estimate", estimate_line(estimate)))
    if estimate.get("precision"):
        rows.append(("computes in", estimate["precision"]))
    if details.get("acceptance"):
        rows.append(("accepted if", str(details["acceptance"])))
    warnings = [*(report.get("warnings") or []), *(estimate.get("warnings") or [])]
    rows.extend(("warning", one_line(w)) for w in warnings)
    note = Text("time and memory are order-of-magnitude guides; --json shows everything", "dim")
    return [_fields(rows), note]


def _method(details: dict[str, Any]) -> str:
    method, lora = str(details.get("method") or "?").upper(), details.get("lora")
    if method == "PROMPT":
        return "PROMPT: system prompt and exemplars optimized, weights frozen"
    if not lora:
        return f"{method}, all weights (full fine-tuning)"
    return f"{method} with LoRA (r {lora.get('r')}, alpha {lora.get('alpha')})"


def schedule_line(training: dict[str, Any]) -> str:
    """'1 epoch, learning rate 0.003, batch 8' from a config's training section (a prompt
    run: its search budget)."""
    if training.get("method") == "prompt":
        return (
            f"{training.get('optimizer')} search, {fmt_number(training.get('max_metric_calls'))} "
            f"metric calls, {training.get('exemplars')} exemplar(s)"
        )
    epochs = training.get("epochs")
    if training.get("max_steps"):
        length = f"max {training['max_steps']} steps"
    else:
        length = f"{fmt_number(epochs)} epoch{'' if epochs == 1 else 's'}"
    return f"{length}, learning rate {fmt_number(training.get('learning_rate'))}, batch " + str(
        training.get("batch_size")
    )


def estimate_line(estimate: dict[str, Any]) -> str:
    """'27 steps (27 per epoch) · 9,616 tokens · about 2 s · 13 MB'."""
    per_epoch = estimate.get("steps_per_epoch")
    unit = "metric calls" if estimate.get("metric_calls") is not None else "steps"
    return " · ".join(
        [
            f"{fmt_number(estimate.get('total_steps'))} {unit}"
            + (f" ({fmt_number(per_epoch)} per epoch)" if per_epoch else ""),
            f"{fmt_number(estimate.get('tokens'))} tokens",
            f"about {fmt_duration(estimate.get('seconds'))}",
            f"{fmt_memory(estimate.get('memory_gb'))} memory",
        ]
    )


def _data_line(report: dict[str, Any]) -> str:
    dropped = {k: v for k, v in (report.get("dropped_by_reason") or {}).items() if v}
    why = f" ({', '.join(f'{k} {v}' for k, v in dropped.items())})" if dropped else ""
    kind = f"{report.get('kind')} ({report.get('format')})" if report.get("format") else ""
    return " · ".join(
        part
        for part in (
            f"{fmt_number(report.get('train_rows'))} train / "
            f"{fmt_number(report.get('eval_rows'))} eval",
            kind,
            f"{fmt_number(report.get('rows_read'))} read, "
            f"{fmt_number(report.get('rows_dropped', 0))} dropped{why}, "
            f"{fmt_number(report.get('duplicates_removed', 0))} duplicates",
        )
        if part
    )


def _tokens_line(report: dict[str, Any]) -> str:
    stats = report["token_stats"]
    shown = " · ".join(
        f"{name} {fmt_number(stats.get(name))}" for name in ("min", "mean", "p95", "max")
    )
    return f"per example {shown} (max_length {fmt_number(report.get('max_length'))})"


def _data(details: dict[str, Any], _config: dict[str, Any]) -> list[RenderableType]:
    report = details.get("report") or {}
    counts = _table("train", "eval", "read", "dropped", "duplicates", "overlapping eval")
    counts.columns[0].justify = "right"
    counts.add_row(
        *(
            fmt_number(value)
            for value in (
                details.get("train_rows"),
                details.get("eval_rows"),
                report.get("rows_read"),
                report.get("rows_dropped"),
                report.get("duplicates_removed"),
                report.get("overlaps_eval"),
            )
        )
    )
    rows = []
    if report.get("token_stats"):
        rows.append(("tokens", _tokens_line(report)))
    rows.extend(_generation_rows(details.get("generation") or {}))
    retrieval = details.get("retrieval") or {}
    if retrieval.get("message"):
        rows.append(("knowledge", one_line(retrieval["message"])))
    rows.extend(("warning", one_line(w)) for w in report.get("warnings") or [])
    sample = details.get("sample") or []
    for number, row in enumerate(sample[:SAMPLE_SHOWN], 1):
        rows.append((f"sample {number}", sample_line(row)))
    return [counts, _fields(rows)]


def _generation_rows(generation: dict[str, Any]) -> list[tuple[str, str]]:
    """Generation's counts and rates, and per field how it was judged and what the kept
    examples hold: 'city  free text · 31 distinct, 27 not in the seeds (Lyon, …)'."""
    if not generation.get("generated"):
        return [("generated", one_line(generation["message"]))] if generation else []
    rows = [
        (
            "generated",
            f"{fmt_number(generation.get('kept'))} kept of {fmt_number(generation['generated'])}"
            f" · keep rate {fmt_number(generation.get('keep_rate'))}"
            f" · near duplicates {fmt_number(generation.get('near_duplicate_rate'))}",
        )
    ]
    rules = generation.get("field_rules") or {}
    for name, stats in (generation.get("field_stats") or {}).items():
        rule = (rules.get(name) or {}).get("rule", "field")
        examples = stats.get("new_examples", [])
        shown = ", ".join(str(v) for v in examples) + (
            ", …" if stats["new"] > len(examples) else ""
        )
        line = f"{rule} · {stats['distinct']} distinct, {stats['new']} not in the seeds"
        rows.append((f"  {name}", one_line(line + (f" ({shown})" if shown else ""))))
    return rows


def sample_line(row: Any) -> str:
    """One training row on one line: 'user: … → assistant: …' or 'prompt: … | completion: …'."""
    if isinstance(row, dict) and isinstance(row.get("messages"), list):
        turns = [f"{m.get('role')}: {m.get('content')}" for m in row["messages"]]
        return one_line(" → ".join(turns))
    if isinstance(row, dict):
        return one_line(" | ".join(f"{k}: {v}" for k, v in row.items()))
    return one_line(row)


def _training(details: dict[str, Any], _config: dict[str, Any]) -> list[RenderableType]:
    step, total = details.get("step"), details.get("total_steps")
    losses = details.get("losses") or []
    rows = [
        ("step", f"{fmt_number(step)} of {fmt_number(total)}"),
        ("loss", fmt_number(details.get("loss"))),
    ]
    if losses:
        recent = [f"{fmt_number(p.get('step'))}: {fmt_number(p.get('loss'))}" for p in losses]
        rows.append(("recent losses", one_line(" → ".join(recent[-6:]))))
    rewards = details.get("rewards") or []
    if rewards:  # an RL run: its reward curve and what it rewarded
        recent = [f"{fmt_number(p.get('step'))}: {fmt_number(p.get('reward'))}" for p in rewards]
        rows.append(("recent rewards", one_line(" → ".join(recent[-6:]))))
        for sample in (details.get("samples") or [])[:SAMPLE_SHOWN]:
            text = f"{fmt_number(sample.get('reward'))} ← {sample.get('completion', '')!r}"
            rows.append((f"sample, step {sample.get('step')}", one_line(text)))
    rows.append(("time left", fmt_duration(details.get("eta_seconds"))))
    if details.get("checkpoint"):
        rows.append(("checkpoint", str(details["checkpoint"])))
    return [_fields(rows)]


def _fixes(details: dict[str, Any], _config: dict[str, Any]) -> list[RenderableType]:
    iteration, most = details.get("iteration"), details.get("max_iterations")
    rows = [("iteration", f"{fmt_number(iteration)} of at most {fmt_number(most)}")]
    if details.get("reviewer_comment"):
        rows.append(("your comment", one_line(details["reviewer_comment"])))
    parts: list[RenderableType] = [_fields(rows)]
    diagnoses = details.get("diagnoses") or []
    if diagnoses:
        parts.append(_diagnoses_grid(diagnoses))
    route = details.get("proposed_route")
    if details.get("proposed_patch"):
        how = f"; route {route}: {one_line(details.get('route_reason'), 200)}" if route else ""
        parts.append(Text(f"approve applies {compact_json(details['proposed_patch'])}{how}"))
    return parts


def _diagnoses_grid(diagnoses: list[dict[str, Any]]) -> Table:
    grid = Table.grid(padding=(0, 1))
    grid.add_column(no_wrap=True)
    grid.add_column(overflow="fold")
    for d in diagnoses:
        style = "red" if d.get("severity") == "error" else "yellow"
        fix = f"fix: {compact_json(d['patch'])}" if d.get("patch") else "no config change proposed"
        grid.add_row(
            Text(f"#{d.get('index')}", style=style),
            Text.assemble((f"{d.get('kind')} ({d.get('severity')})", style), f" · {fix}"),
        )
        grid.add_row("", Text(one_line(d.get("summary"), 240), style="dim"))
    return grid


def _evaluation(details: dict[str, Any], _config: dict[str, Any]) -> list[RenderableType]:
    checks = details.get("checks") or _checks_from_thresholds(details.get("thresholds") or {})
    # Checks with a summary are already named in the gate's message ("FAILED: ...").
    missed = [c for c in checks if not c.get("passed") and not c.get("summary")]
    parts: list[RenderableType] = []
    if missed:
        text = "; ".join(_check_text(c) for c in missed)
        parts.append(Text(f"missed: {one_line(text, 200)}", style="red"))
    parts.append(_metrics_table(details, checks))
    examples = _one_per_kind(details.get("examples") or [])
    if examples:
        parts.append(Text("examples (tuned model's score per row):", style="bold"))
        parts.append(_examples_grid(examples))
    if details.get("report_path"):
        parts.append(Text(f"report: {details['report_path']}", style="dim"))
    return parts


def _checks_from_thresholds(thresholds: dict[str, Any]) -> list[dict[str, Any]]:
    """The older `thresholds` shape ({metric: {threshold, value, higher_is_better, passed}})
    as checks."""
    return [
        {
            "metric": metric,
            "rule": "min" if t.get("higher_is_better", True) else "max",
            "required": t.get("threshold"),
            "tuned": t.get("value"),
            "passed": t.get("passed"),
        }
        for metric, t in thresholds.items()
        if isinstance(t, dict)
    ]


def _required_text(check: dict[str, Any]) -> str:
    sign = "≥" if check.get("rule") in ("min", "above_base") else "≤"
    text = f"{sign} {fmt_number(check.get('required'))}"
    if str(check.get("rule", "")).endswith("_base") and check.get("bound") is not None:
        plus = "+" if sign == "≥" else "-"
        text += f" (base {plus} {fmt_number(check['bound'])})"
    return text


def _check_text(check: dict[str, Any]) -> str:
    below = "<" if check.get("rule") in ("min", "above_base") else ">"
    value, required = fmt_number(check.get("tuned")), fmt_number(check.get("required"))
    return f"{check.get('metric')} {value} {below} {required} required"


def _metrics_table(details: dict[str, Any], checks: list[dict[str, Any]]) -> Table:
    base, tuned = details.get("base") or {}, details.get("tuned") or {}
    deltas = details.get("deltas") or {}
    by_metric: dict[str, list[dict[str, Any]]] = {}
    for check in checks:
        by_metric.setdefault(str(check.get("metric")), []).append(check)
    table = _table("metric", "base", "tuned", "change", "required", "")
    table.columns[4].justify = table.columns[5].justify = "left"
    for metric in [*tuned, *(m for m in by_metric if m not in tuned)]:
        own = by_metric.get(metric, [])
        value = tuned.get(metric, own[0].get("tuned") if own else None)
        before = base.get(metric, own[0].get("base") if own else None)
        change = deltas.get(metric)
        if change is None and isinstance(value, (int, float)) and isinstance(before, (int, float)):
            change = value - before
        mark = Text("")
        if own:
            ok = all(c.get("passed") for c in own)
            mark = Text("✓ met" if ok else "✗ missed", style="green" if ok else "red")
        required = ", ".join(_required_text(c) for c in own)
        row = (fmt_number(before), fmt_number(value), fmt_change(change), required)
        table.add_row(metric, *row, mark)
    return table


def _one_per_kind(examples: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: dict[str, dict[str, Any]] = {}
    for example in examples:
        seen.setdefault(str(example.get("which")), example)
    return list(seen.values())[:EXAMPLES_SHOWN]


def _examples_grid(examples: list[dict[str, Any]]) -> Table:
    grid = Table.grid(padding=(0, 2))
    # min_width: on a narrow terminal rich would otherwise shrink the labels to "wors…".
    grid.add_column(style="dim", no_wrap=True, min_width=14)
    grid.add_column(no_wrap=True, overflow="ellipsis", ratio=1)
    for example in examples:
        label = f"{example.get('which')} ({fmt_number(example.get('score'))})"
        grid.add_row(Text(label, style="bold"), one_line(example.get("input")))
        for label, key in (
            ("expected", "reference"),
            ("base", "base_output"),
            ("tuned", "tuned_output"),
        ):
            grid.add_row(f"  {label}", one_line(example.get(key)) or "(empty)")
    return grid


def _release(details: dict[str, Any], _config: dict[str, Any]) -> list[RenderableType]:
    rows = details.get("candidates") or []
    gated = details.get("gated_metrics") or []
    table = _table("#", "candidate", "size", "bits/w", "tok/s", *gated, "kept", "KL", "top-1", "")
    for column in (table.columns[1], table.columns[-1]):
        column.justify, column.no_wrap = "left", True
    table.columns[-3].min_width = 7  # KL as 3.1e-06
    table.padding = (0, 1)  # ten columns and more: narrow gutters keep them on a 100-column line
    for row in rows:
        table.add_row(*release_row(row, gated))
    parts: list[RenderableType] = [table]
    for row in rows:
        if row.get("verdict") != "pass":
            why = one_line(row.get("reason"), 200)
            parts.append(Text(f"#{row['index']} {row['name']} rolled back: {why}", style="red"))
        search = row.get("search")
        if search:
            best = search["trials"][search["best"]]
            parts.append(
                Text(
                    f"#{row['index']} CMA-ES: {search['evaluations']} merges tried, best held-out "
                    f"score {fmt_number(best['score'])} at weights {best['weights']}",
                    style="dim",
                )
            )
    parts.append(Text("approve registers every passing candidate; --select 1,2 only those", "dim"))
    return parts


def _size(size: Any) -> str:
    if not isinstance(size, (int, float)):
        return "—"
    return f"{size / 1e6:.1f} MB" if size >= 1e5 else f"{size / 1e3:.0f} KB"


def release_row(row: dict[str, Any], gated: list[str]) -> tuple[Any, ...]:
    """One candidate of the release table: its measurements, and its verdict in color."""
    metrics, kept = row.get("metrics") or {}, row.get("retention") or {}
    passed = row.get("verdict") == "pass"
    mark = Text(
        f"{'✓' if passed else '✗'} {row.get('alias', row.get('verdict'))}",
        style="green" if passed else "red",
    )
    kl = row.get("kl")
    return (
        str(row.get("index")),
        str(row.get("name")),
        _size(row.get("bytes")),
        fmt_number(row.get("bits_per_weight")),
        fmt_number(row.get("tokens_per_second")),
        *(fmt_number(metrics.get(m)) for m in gated),
        min((f"{kept[m]:.1%}" for m in gated if m in kept), default="—"),
        f"{kl:.2g}" if isinstance(kl, (int, float)) else "—",
        fmt_number(row.get("top1")),
        mark,
    )


SCREENS = {
    "approve_plan": _plan,
    "approve_data": _data,
    "training_checkpoint": _training,
    "approve_evaluation": _evaluation,
    "approve_fixes": _fixes,
    "approve_release": _release,
}
