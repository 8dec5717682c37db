"""``harness sandbox serve``: the embedded sandbox search engine, on 127.0.0.1, for trying things out."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from ..sandbox import DEFAULT_RULES_PATH, Sandbox, load_rules
from ..sandbox.faults import FaultInjector, parse_fault_spec
from ._app import app
from ._common import console

sandbox_app = typer.Typer(help="The embedded sandbox platform (a local search engine with censorship rules).",
                          no_args_is_help=True)
app.add_typer(sandbox_app, name="sandbox")


@sandbox_app.command("serve")
def serve(
    port: int = typer.Option(0, "--port", help="port on 127.0.0.1 (0: a free one)"),
    rules: Path = typer.Option(DEFAULT_RULES_PATH, "--rules", help="rules YAML"),
    epoch: str = typer.Option("0", "--epoch", help="initial epoch (index or name)"),
    faults: str | None = typer.Option(
        None, "--faults",
        help="serve faults: 'rate=0.2,seed=7' (optionally per kind, e.g. 'stall=0.05,reset=0.01,slow_s=5') or a YAML file",
    ),
) -> None:
    """Serve the sandbox until interrupted. Switch epochs with POST /_sandbox/epoch?name=NAME."""
    plan = parse_fault_spec(faults) if faults else None
    sb = Sandbox(load_rules(rules), port=port)
    sb.set_epoch(epoch)
    if plan is not None:
        FaultInjector(plan).install(sb)
    with sb:
        console.print(f"sandbox listening on {sb.url} (epoch {sb.engine.epoch.name}); use --base-url sandbox={sb.url}")
        if plan is not None:
            shares = ", ".join(f"{k.value}={p:.3g}" for k, p in plan.per_kind().items()) or "none"
            console.print(f"fault injection (seed {plan.seed}): {shares}")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
