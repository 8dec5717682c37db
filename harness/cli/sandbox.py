from __future__ import annotations

import time
from pathlib import Path

import typer

from ..sandbox import DEFAULT_RULES_PATH, Sandbox, load_rules
from . import app
from ._common import console

sandbox_app = typer.Typer(help="The embedded sandbox platform (a local search engine with censorship rules).",
                          no_args_is_help=True)
app.add_typer(sandbox_app, name="sandbox")


@sandbox_app.command("serve")
def serve(
    port: int = typer.Option(0, "--port", help="port on 127.0.0.1 (0: a free one)"),
    rules: Path = typer.Option(DEFAULT_RULES_PATH, "--rules", help="rules YAML"),
    epoch: str = typer.Option("0", "--epoch", help="initial epoch (index or name)"),
) -> None:
    """Serve the sandbox until interrupted. Switch epochs with POST /_sandbox/epoch?name=NAME."""
    sb = Sandbox(load_rules(rules), port=port)
    sb.set_epoch(epoch)
    with sb:
        console.print(f"sandbox listening on {sb.url} (epoch {sb.engine.epoch.name}); use --base-url sandbox={sb.url}")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
