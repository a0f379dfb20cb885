"""REPORT.md and a self-contained REPORT.html for one experiment.

Generated blocks sit between `<!-- assay:begin:NAME -->` and `<!-- assay:end:NAME -->` and are
rewritten from the run files on every `assay report`; everything outside them belongs to the
reader and is kept. Prose that needs a person is left as a marked prompt, never invented.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from assay.config import write_atomic
from assay.experiment import load_experiment
from assay.lab import Lab, require_writable
from assay.report import sections
from assay.report.evidence import check_value, load_runs
from assay.report.plots import Figure, check_format, plot_experiment
from assay.report.verdict import verdict

if TYPE_CHECKING:
    from markdown_it.token import Token

REPORT = "REPORT.md"
HTML = "REPORT.html"
PROMPT = "> **TO WRITE (a person):**"
REPORT_FORMATS = ("png", "svg", "webp")  # what REPORT.html can embed as an image: no pdf"
_BLOCK = re.compile(r"(<!-- assay:begin:([\w-]+) -->\n)(.*?)(\n<!-- assay:end:\2 -->)", re.S)


@dataclass
class ReportResult:
    markdown: Path
    html: Path
    figures: list[Figure]
    regenerated: list[str]
    missing: list[str] = field(default_factory=list)  # blocks deleted by hand: not put back
    created: bool = False

    def to_dict(self) -> dict[str, object]:
        return {"markdown": str(self.markdown), "html": str(self.html), "figures": [f.to_dict() for f in self.figures],
                "regenerated": self.regenerated, "missing": self.missing, "created": self.created}


def block(name: str) -> str:
    return f"<!-- assay:begin:{name} -->\n{{{name}}}\n<!-- assay:end:{name} -->"


TEMPLATE = f"""# Report: {{experiment}}

*Written by `assay report {{experiment}}`. Text between `assay:begin` and `assay:end` markers is
regenerated from the run files each time; everything else is yours and is kept. Replace each
"TO WRITE" prompt with prose that the tables, figures and journal support.*

## Abstract

{PROMPT} two or three sentences: the question, what was run, and what the data show (see
> Results and Conclusion). Claim nothing the tables and figures below do not show.

{block("abstract")}

## Introduction

{block("introduction")}

{PROMPT} why this question matters and what earlier result or observation motivated it.

## Methods

{block("methods")}

{PROMPT} the data source and split, the model and training procedure, anything the recorded
> configuration does not say.

## Results

{block("results")}

{PROMPT} what the table and figures show, in plain words, without interpretation.

## Discussion

{block("discussion")}

{PROMPT} what the anomalies and journal notes above mean for the result, and the limits of this
> evidence (number of seeds, one dataset, ...).

## Conclusion

{block("conclusion")}

{PROMPT} the conclusion in one or two sentences, consistent with the verdict above.
"""


def write_report(lab: Lab, name: str, fmt: str = "png", value: str = "last") -> ReportResult:
    """Write (or refresh) experiments/NAME/REPORT.md and REPORT.html from the run files.

    Figures are regenerated in the experiment's plots/ (with their data sidecars); the verdict is
    `assay verdict`'s. Hand-written text outside the generated blocks is kept as it is.

    Raises:
        ConfigError: unknown experiment, bad format (pdf cannot be embedded in REPORT.html) or value.
        StoreError: an unreadable run record.
    """
    fmt = check_format(fmt, REPORT_FORMATS)
    check_value(value)
    exp = load_experiment(lab, name)
    require_writable(exp.path / "REPORT.md", "write the report")
    runs = load_runs(exp)
    v = verdict(lab, name, value=value)
    has_metric = any(exp.metric in (r.record.get("metrics") or {}) for r in runs if r.ignored is None)
    figures = plot_experiment(lab, name, fmt=fmt, value=value) if has_metric else []
    builders: dict[str, Callable[[], str]] = {
        "abstract": lambda: sections.abstract_facts(exp, runs, v),
        "introduction": lambda: sections.introduction(exp),
        "methods": lambda: sections.methods(exp, runs),
        "results": lambda: sections.results(exp, runs, figures, value),
        "discussion": lambda: sections.discussion(exp, runs),
        "conclusion": lambda: sections.conclusion(exp, v),
    }
    md_path = exp.path / REPORT
    created = not md_path.exists()
    text = TEMPLATE.format(experiment=name, **{k: "" for k in builders}) if created else md_path.read_text(encoding="utf-8")
    seen: list[str] = []

    def fill(m: re.Match[str]) -> str:
        key = m.group(2)
        if key not in builders:
            return m.group(0)  # a block of a newer assay, or the reader's own: left alone
        seen.append(key)
        return m.group(1) + builders[key]().rstrip("\n") + m.group(4)

    text = _BLOCK.sub(fill, text)
    write_atomic(md_path, text)
    html_path = exp.path / HTML
    write_atomic(html_path, to_html(text, exp.path, f"Report: {name}"))
    return ReportResult(md_path, html_path, figures, seen, [k for k in builders if k not in seen], created)


_CSS = """body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
table{border-collapse:collapse;margin:.5rem 0;font-size:13px}th,td{border:1px solid #ccc;padding:.2rem .5rem;text-align:left}
img{max-width:100%}blockquote{border-left:4px solid #e0a800;background:#fff8e1;margin:.5rem 0;padding:.3rem .8rem}
code{background:#f3f3f3;padding:0 .2rem}"""
# The report is shared as a file: nothing in it may run, fetch or submit anything. Only the style
# above (by its hash) and images embedded as data: URLs (or next to the file) are allowed.
_CSP = ("default-src 'none'; style-src 'sha256-{style}'; img-src 'self' data:; base-uri 'none'; "
        "form-action 'none'")
_IMAGE_TYPES = {".png": "image/png", ".webp": "image/webp", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
                ".gif": "image/gif", ".svg": "image/svg+xml"}
_MARKER = re.compile(r"^<!-- assay:(?:begin|end):[\w-]+ -->$", re.M)


def render_markdown(markdown: str, image: Callable[[Token], None] | None = None) -> str:
    """Markdown -> safe HTML, as REPORT.html and the dashboard's report tab show it.

    Raw HTML is off (a `<script>` in a note is shown as text), the `assay:begin/end` markers are
    dropped, and `image` may rewrite each image token (embed it, or point it at a file endpoint).
    """
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": False}).enable("table")
    tokens = md.parse(_MARKER.sub("", markdown))
    for tok in tokens:
        for child in tok.children or []:
            if child.type == "image" and image is not None:
                image(child)
    html: str = md.renderer.render(tokens, md.options, {})
    return html


def to_html(markdown: str, base: Path, title: str) -> str:
    """Markdown -> one inert HTML file that stands alone.

    Raw HTML in the Markdown (a hypothesis, a note, an ignore reason) is shown as text, never run.
    Images inside `base` (after resolving symlinks) are embedded as base64; any other local image
    is replaced by a line saying so, so no file from elsewhere on the machine ends up in the report.
    """
    import hashlib
    import html as htmlmod

    root = base.resolve()
    body = render_markdown(markdown, image=lambda child: _embed(child, root))
    style = base64.b64encode(hashlib.sha256(_CSS.encode()).digest()).decode()
    csp = _CSP.format(style=style)
    return (f"<!doctype html>\n<html><head><meta charset=\"utf-8\">"
            f"<meta http-equiv=\"Content-Security-Policy\" content=\"{csp}\">"
            f"<title>{htmlmod.escape(title)}</title><style>{_CSS}</style></head><body>\n{body}</body></html>\n")


def _embed(image: Token, root: Path) -> None:
    """Point an image token at a data: URL of its file when the file lies inside `root`."""
    from urllib.parse import unquote, urlsplit

    src = str(image.attrGet("src") or "")
    if urlsplit(src).scheme in ("http", "https", "data"):
        return  # not a local file (remote images are blocked by the page's policy, not fetched here)
    path = (root / unquote(src)).resolve()
    mime = _IMAGE_TYPES.get(path.suffix.lower())
    if path.is_relative_to(root) and path.is_file() and mime:
        image.attrSet("src", f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode()}")
    elif not path.is_relative_to(root):
        image.type, image.children = "text", None
        image.content = f"[image {src} not embedded: only images inside the experiment folder are]"
