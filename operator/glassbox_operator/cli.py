"""The `glassbox` command: thin entry points that hand off in one line each."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from glassbox_api.podcontract import Env

from . import cli_artifacts, manifests, runner

app = typer.Typer(
    name="glassbox",
    help="Run the whole life of research language models as Kubernetes resources, or locally.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.command()
def run(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="A glassbox resource YAML file."),
    store: Optional[str] = typer.Option(None, "--store", help="Publish here: a directory or s3://bucket/prefix (default: ./glassbox-runs)."),
    name: Optional[str] = typer.Option(None, "--name", help="Which resource of a multi-document file."),
    host: Optional[str] = typer.Option(None, "--host", help="Service kinds: address to serve on (default 127.0.0.1)."),
    port: Optional[int] = typer.Option(None, "--port", help="Service kinds: port to serve on (default 8080; 0 picks a free one)."),
) -> None:
    """Run one resource on this machine (the embedded default): same validation, same workload code.
    A service kind trains (if it has a training stage), then serves until Ctrl-C or SIGTERM."""
    raise typer.Exit(runner.run_local(file, store=store, name=name, host=host, port=port))


@app.command()
def validate(files: list[Path] = typer.Argument(..., exists=True, dir_okay=False)) -> None:
    """Check resource files the way the apiserver would, and say what to fix."""
    raise typer.Exit(runner.validate_files(files))


@app.command()
def crds(
    out: Path = typer.Option(Path("crds"), help="Folder for the CRD YAML."),
    chart: Optional[Path] = typer.Option(Path("charts/glassbox/crds"), help="The chart's crds/ folder (written too)."),
    values_schema: Optional[Path] = typer.Option(Path("charts/glassbox/values.schema.json"), help="The chart's values schema (written too)."),
    check: bool = typer.Option(False, "--check", help="Only report drift; exit 1 when the files differ."),
) -> None:
    """Generate the CustomResourceDefinitions from the API types, and the chart's values schema from the config types."""
    from . import values

    crds_rc = manifests.write_crds([out] + ([chart] if chart else []), check=check)
    raise typer.Exit(max(crds_rc, values.write_values_schema(values_schema, check=check) if values_schema else 0))


@app.command()
def plan(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="A ShardedFinetune YAML file."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Print the sharding plan of a ShardedFinetune (parameter, shape, spec, bytes per device)."""
    raise typer.Exit(runner.workload_command(["plan", "--spec", str(file)] + (["--json"] if json_out else [])))


@app.command()
def checkpoints(
    run: str = typer.Argument(..., help="A run URI (s3://..., a path) or a resource name in the store."),
    store: Optional[str] = typer.Option(None, "--store", help="Store root to look names up in (default: ./glassbox-runs)."),
) -> None:
    """List the published checkpoints of a run: step, tokens, loss, evals, data range."""
    raise typer.Exit(cli_artifacts.checkpoints(run, store=store))


@app.command()
def kg(
    run: str = typer.Argument(..., help="A KGHarvest run URI (s3://..., a path) or a resource name in the store."),
    relation: Optional[str] = typer.Option(None, "--relation", "-r", help="Only this relation."),
    top: Optional[int] = typer.Option(None, "--top", "-n", min=1, help="The best N tuples of each relation."),
    json_out: bool = typer.Option(False, "--json", help="JSON lines ({relation, entities, score, weight}) instead of a table."),
    store: Optional[str] = typer.Option(None, "--store", help="Store root to look names up in (default: ./glassbox-runs)."),
) -> None:
    """Print the tuples a KGHarvest published, best first per relation."""
    raise typer.Exit(cli_artifacts.kg(run, relation=relation, top=top, as_json=json_out, store=store))


@app.command()
def report(
    run: str = typer.Argument(..., help="A run URI (s3://..., a path) or a resource name in the store."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="HTML file to write (default: <name>-report.html)."),
    store: Optional[str] = typer.Option(None, "--store", help="Store root to look names up in."),
) -> None:
    """Write an HTML report of a run: loss and eval-over-checkpoint plots, the checkpoint table."""
    raise typer.Exit(cli_artifacts.report(run, out, store=store))


@app.command()
def ui(
    store: Optional[str] = typer.Option(None, "--store", help="Store root: a directory or s3://bucket/prefix (default: $GLASSBOX_STORE or ./glassbox-runs)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8265, "--port", min=0, max=65535, help="Port to listen on."),
) -> None:
    """Serve the web UI over a store: every run, checkpoint, curve, graph, score and a playground."""
    try:
        from glassbox_ui.app import serve
    except ImportError as exc:  # the ui extra is not installed
        typer.echo(f"glassbox ui needs the ui extra (pip install 'glassbox[ui]'): {exc}", err=True)
        raise typer.Exit(2) from None
    from glassbox_api.store import StoreError

    try:
        serve(cli_artifacts._default_root(store), host=host, port=port)
    except StoreError as exc:
        typer.echo(f"glassbox ui: {exc}", err=True)
        raise typer.Exit(2) from None


@app.command()
def render(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="A glassbox resource YAML file."),
    config: Optional[str] = typer.Option(None, "--config", envvar=Env.CONFIG, help="Operator config.yaml (default: the chart's defaults, with a placeholder store endpoint where a resource names none)."),
) -> None:
    """Print the children the operator would create for each resource, as YAML (no cluster)."""
    from . import preview

    raise typer.Exit(preview.render_file(file, config))


@app.command()
def operator(
    namespace: list[str] = typer.Option([], "--namespace", "-n", help="Watch this namespace (repeat); default: all."),
    all_namespaces: bool = typer.Option(False, "--all-namespaces", "-A", help="Watch every namespace."),
    standalone: bool = typer.Option(False, "--standalone", help="No peering (a single replica, tests, development)."),
    peering: Optional[str] = typer.Option(None, "--peering", help="Kopf peering object shared by the replicas."),
    liveness: Optional[str] = typer.Option(None, "--liveness", help="Liveness endpoint, e.g. http://0.0.0.0:8080/healthz."),
    metrics_port: Optional[int] = typer.Option(None, "--metrics-port", help="Serve Prometheus metrics on this port."),
    log_level: str = typer.Option("info", "--log-level"),
    config: Optional[str] = typer.Option(None, "--config", envvar=Env.CONFIG, help="Operator config.yaml (the chart mounts it)."),
    resync: float = typer.Option(10.0, "--resync-seconds", help="How often active resources are refreshed."),
    workers: int = typer.Option(20, "--workers", help="Threads running reconcile passes."),
) -> None:
    """Run the Kopf operator against the current kubeconfig (or in-cluster)."""
    from . import main as operator_main

    raise typer.Exit(operator_main.run(namespaces=namespace, all_namespaces=all_namespaces, standalone=standalone, peering=peering, liveness=liveness, metrics_port=metrics_port, log_level=log_level, config_path=config, resync_seconds=resync, workers=workers))


def main() -> None:  # pragma: no cover - console entry
    sys.exit(app())
