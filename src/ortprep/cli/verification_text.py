"""What a verification verdict rests on, in lines for people: the inputs (name, shape, dtype,
values) and tolerances, the reference each artifact was compared with, the float figure, and the
inputs the original failed on first. ``verify``, ``convert`` and ``optimize`` print the same lines.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ortprep.cli import render


def print_verification(results: Sequence[tuple[str, Any]], indent: str = "") -> None:
    """Print the lines for one model's ``(artifact name, VerifyResult)`` pairs (shared inputs
    once, then one line per artifact session)."""
    if not results:
        return
    t = render.text
    first = results[0][1]
    if first.input_attempts:
        render.out.print(
            f"{indent}[dim]the original failed on {len(first.input_attempts)} set(s) of "
            "synthesized inputs first:[/]"
        )
        for line in first.input_attempts:
            render.out.print(f"{indent}[dim]  - {t(line)}[/]", soft_wrap=True)
    if first.not_verified:
        render.out.print(f"{indent}[red]{t(first.not_verified)}[/]", soft_wrap=True)
        return
    render.out.print(f"{indent}[dim]verified on {t(first.inputs_text)}[/]", soft_wrap=True)
    for name, v in results:
        if v.not_verified or v.load_error:
            continue
        where = f"{name} ({v.session})" if v.session else name
        max_abs = max((o.max_abs for o in v.outputs), default=0.0)
        line = f"{where}: max abs {max_abs:.3g} vs the {v.reference_config}"
        if v.float_reference is not None:
            line += f"; {v.float_reference.text}"
        style = (
            "red"
            if v.float_reference is not None
            and not v.float_reference.ok
            and not (v.float_reference.informative)
            else "dim"
        )
        render.out.print(f"{indent}[{style}]{t(line)}[/]", soft_wrap=True)
