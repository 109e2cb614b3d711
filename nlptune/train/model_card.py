"""The model card of a run: ``best/README.md``.

Written from the run directory's own files (config.yaml, manifest.json, metrics.json, metrics.jsonl) after
they are complete, so it states exactly what the run recorded: task, data hashes, model, the parameter report
(learned parameters per module, trainable vs frozen), the inference cost, every hyperparameter, the results and
how to reproduce.
"""
from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

import yaml

from nlptune.config.names import is_pretrained
from nlptune.config.schema import kind_of
from nlptune.kinds import get_kind
from nlptune.utils.files import atomic_write_text
from nlptune.utils.plain import parse_json

MAX_EVAL_ROWS = 30


def _read(run_dir: Path) -> tuple[dict, dict, dict, list[dict]]:
    config = yaml.safe_load((run_dir / "config.yaml").read_text()) or {}
    manifest = parse_json((run_dir / "manifest.json").read_text())
    summary = parse_json((run_dir / "metrics.json").read_text())
    evals = []
    metrics_file = run_dir / "metrics.jsonl"
    if metrics_file.is_file():
        for line in metrics_file.read_text().splitlines():
            record = parse_json(line) if line.strip() else {}
            if any(k.startswith("eval_") for k in record):
                evals.append(record)
    return config, manifest, summary, evals


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return "null" if value is None else str(value)


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_fmt(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return lines + [""]


def _results(summary: dict, evals: list[dict]) -> list[str]:
    best, main, best_step = summary.get("best") or {}, summary.get("main_metric"), summary.get("best_step")
    lines = ["## Results (validation split)", ""]
    average = summary.get("weight_average")  # trainer.average_from
    if best and average and average.get("kept"):
        lines += [f"Best {main}: **{_fmt(best.get(main))}**, the mean of the weights at {average['evaluations']} "
                  f"evaluations from step {average['from_step']} to step {best_step} (of {summary.get('steps')} "
                  f"steps, {summary.get('epochs')} epoch(s); these averaged weights are in this folder).", ""]
    elif best:
        lines += [f"Best {main}: **{_fmt(best.get(main))}** at step {best_step} "
                  f"(of {summary.get('steps')} steps, {summary.get('epochs')} epoch(s); these weights are in this "
                  "folder).", ""]
        if average:
            lines += [f"The mean of the weights at {average['evaluations']} evaluations from step "
                      f"{average['from_step']} (trainer.average_from) scored {_fmt(average['scores'].get(main))}: "
                      "not better, so not kept.", ""]
        lines += _table(["metric", "best"], [[k, v] for k, v in best.items()])
    shown = evals if len(evals) <= MAX_EVAL_ROWS else \
        [r for r in evals[:-10] if r.get("step") == best_step] + evals[-10:]
    if shown:
        names = [k for k in shown[0] if k.startswith("eval_")]
        lines += ["Evaluations:", ""]
        lines += _table(["step", "epoch", "samples"] + [n[5:] for n in names],
                        [[r.get("step"), r.get("epoch"), r.get("samples")] + [r.get(n) for n in names] for r in shown])
    lines += [f"Training time {_fmt(summary.get('train_runtime_s'))} s (evaluation {_fmt(summary.get('eval_runtime_s'))}"
              f" s), {_fmt(summary.get('train_samples_per_second'))} samples/s, {summary.get('num_processes', 1)} "
              "process(es).", ""]
    return lines


def _data(config: dict, manifest: dict) -> list[str]:
    task = config.get("task") or {}
    data = manifest.get("data") or {}
    rows = [[split, (data.get("sources") or {}).get(split), sha,
             manifest.get(f"{split}_rows")] for split, sha in (data.get("sha256") or {}).items()]
    lines = ["## Task and data", "", f"Task `{task.get('name')}` ({kind_of(task)}): text field(s) "
             f"{', '.join(task.get('text_fields') or [])}, label `{task.get('label_field')}`"
             + (f" ({', '.join(map(str, task['label_names']))})" if task.get("label_names") else "")
             + f"; metrics {', '.join(task.get('metrics') or [])} (main: {task.get('main_metric')}).", ""]
    return lines + _table(["split", "source", "sha256", "rows"], rows)


def _model(config: dict, summary: dict) -> list[str]:
    model = config.get("model") or {}
    parameters = summary.get("parameters") or {}
    lines = ["## Model", ""]
    if is_pretrained(model.get("name")):
        lines += [f"Pretrained `{model.get('name_or_path')}` (revision {model.get('revision') or 'default'}) with a "
                  "sequence-classification head, fine-tuned.", ""]
        if model.get("pooling", "cls") != "cls":  # plain transformers would read the first token: say so here
            lines += [f"The head reads the {model['pooling']} of the last hidden states over the text's tokens "
                      "(`model.pooling`), recorded in config.json: load it with "
                      "`nlptune.models.pretrained.restore_pooling(AutoModelForSequenceClassification.from_pretrained"
                      "(PATH))` or nlptune's own commands; transformers alone reads the first token.", ""]
    else:
        lines += [f"`{model.get('name')}` encoder trained from scratch, with a tokenizer "
                  f"({model.get('tokenizer')}) learned on the training split.", ""]
    rows = [[name, c.get("total"), c.get("trainable"), c.get("total", 0) - c.get("trainable", 0)]
            for name, c in (parameters.get("modules") or {}).items()]
    rows.append(["**all**", parameters.get("total"), parameters.get("trainable"), parameters.get("frozen")])
    lines += ["Learned parameters (what the model learns), per module:", ""]
    return lines + _table(["module", "total", "trainable", "frozen"], rows)


def _cost(summary: dict) -> list[str]:
    """The best model's inference cost as measured at the end of the run (`nlptune.train.cost`); none when it was
    not measured (trainer.measure_cost=false, or a run from before it existed)."""
    cost = summary.get("cost")
    if not cost:
        return []
    lines = ["## Inference cost", "",
             f"{_fmt(cost.get('params'))} parameters, {_fmt(cost.get('size_mb'))} MB of weights on disk. Measured on "
             "the training machine when the run ended (wall-clock figures of that machine and moment: they vary "
             "between machines and runs). A prediction is the model's forward pass and the task's predictions from "
             "it; tokenizing is not timed.", ""]
    rows = [[block.get("device"), cost.get("threads") if block is cost else "-", block.get("precision"),
             block.get("latency_ms"), block.get("latency_examples"), block.get("throughput"),
             block.get("throughput_examples")] for block in (cost, cost.get("cuda")) if block]
    return lines + _table(["device", "threads", "precision", "latency ms (batch 1)", "timed examples",
                           "examples/s (batch 32)", "timed examples"], rows)


def _reproduce(run_dir: Path, manifest: dict) -> list[str]:
    env = manifest.get("environment") or {}
    command = env.get("command") or []
    args = command[command.index("train") + 1:] if "train" in command else []
    recipe = manifest.get("recipe")
    lines = ["## How to reproduce", "", "```bash", f"nlptune freeze {run_dir} my.yaml   # this run as a recipe",
             "nlptune reproduce my.yaml            # retrain it and check the result against this one"]
    if recipe:
        overrides = " ".join(shlex.quote(o) for o in recipe.get("overrides") or [])
        lines.append(f"nlptune train recipe={recipe.get('path')} {overrides}".rstrip()
                     + f"   # recipe '{recipe.get('name')}' (sha256 {str(recipe.get('sha256'))[:12]}...)")
    elif args:
        lines.append("nlptune train " + " ".join(shlex.quote(a) for a in args) + "   # the original command line")
    lines += ["```", "", f"Environment: python {env.get('python')}, "
              + ", ".join(f"{k} {v}" for k, v in (env.get("versions") or {}).items() if v)
              + f"; devices: {', '.join(env.get('devices') or [])}; git commit {env.get('git_commit')}; "
              f"seed {manifest.get('seed')}.", ""]
    if recipe and recipe.get("drift"):
        lines += ["Pins that differed from the recipe when this run started:", ""]
        lines += _table(["pin", "recipe", "this run"], [[d["pin"], d["expected"], d["found"]] for d in recipe["drift"]])
    return lines


def write_model_card(run_dir: str | Path) -> Path:
    """Write ``<run_dir>/best/README.md`` from the run directory's files; returns its path."""
    run_dir = Path(run_dir)
    config, manifest, summary, evals = _read(run_dir)
    task, model = (config.get("task") or {}).get("name"), (config.get("model") or {}).get("name")
    hyper = dict(summary.get("hyperparameters") or {})
    for section, keys in (("task", ("max_length", "max_train_samples", "max_eval_samples")),
                          ("augment", tuple((config.get("augment") or {})))):
        for key in keys:
            hyper.setdefault(f"{section}.{key}", (config.get(section) or {}).get(key))
    kind = get_kind(kind_of(config.get("task") or {}))
    pipeline_task, pipeline_arguments = kind.pipeline_task, kind.pipeline_arguments
    lines = ["---", "library_name: " + ("transformers" if is_pretrained(model) else "nlptune"),
             f"tags: [nlptune, {pipeline_task}]", "---", "",
             f"# {task} · {model} (nlptune)", "",
             f"Best model of the nlptune run `{run_dir}`. Load it with `nlptune predict {run_dir} \"some text\"`"
             + (f" or `transformers.pipeline(\"{pipeline_task}\", model=\"best/\"{pipeline_arguments})`."
                if is_pretrained(model)
                else "."), ""]
    lines += _results(summary, evals) + _data(config, manifest) + _model(config, summary) + _cost(summary)
    lines += ["## Hyperparameters (what was set)", ""]
    lines += _table(["key", "value"], [[k, v] for k, v in hyper.items()])
    lines += _reproduce(run_dir, manifest)
    path = run_dir / "best" / "README.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, "\n".join(lines))  # never through a link
    return path
