"""The docs show tested code: every operator, sensor and notifier appears in an example the docs include
from ``example_dags/``, and the README's example is the example DAG's code. (``make docs`` builds the site
strictly: broken links, anchors and includes fail there.)"""

from __future__ import annotations

import importlib
import inspect
import re
import textwrap
from pathlib import Path

import pytest

from airflow_provider_stop import services

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
#: ``--8<-- "path"`` or ``--8<-- "path:section"`` in a docs page.
INCLUDE = re.compile(r'^--8<-- "(?P<path>[^":]+)(?::(?P<section>[\w-]+))?"\s*$', re.MULTILINE)
MARKER = re.compile(r"^\s*# --8<-- \[(start|end):[\w-]+\]\s*$")


def section(path: Path, name: str | None) -> str:
    """A file's text, or one marked section of it, dedented, without the section markers."""
    lines = path.read_text().splitlines()
    if name is not None:
        start = lines.index(next(x for x in lines if x.strip() == f"# --8<-- [start:{name}]"))
        end = lines.index(next(x for x in lines if x.strip() == f"# --8<-- [end:{name}]"))
        lines = lines[start + 1 : end]
    return textwrap.dedent("\n".join(x for x in lines if not MARKER.match(x)))


def included_examples() -> dict[str, str]:
    """Every ``example_dags/`` include of the docs pages: ``path[:section]`` -> the included code."""
    found = {}
    for page in DOCS.rglob("*.md"):
        for match in INCLUDE.finditer(page.read_text()):
            if match["path"].startswith("example_dags/"):
                key = match["path"] + (f":{match['section']}" if match["section"] else "")
                found[key] = section(ROOT / match["path"], match["section"])
    return found


def task_classes() -> list[str]:
    """The operator, sensor and notifier classes of every service the package provides."""
    names = []
    for svc in services.provided():
        for layer in ("operators", "sensors", "notifications"):
            module = importlib.import_module(svc.module(layer))
            names += [
                name
                for name, obj in vars(module).items()
                if inspect.isclass(obj) and obj.__module__ == module.__name__
            ]
    return names


@pytest.mark.parametrize("class_name", task_classes())
def test_every_task_class_has_an_example_the_docs_include(class_name: str) -> None:
    examples = included_examples()
    showing = [key for key, code in examples.items() if re.search(rf"\b{class_name}\(", code)]
    assert showing, f"no docs page includes an example_dags/ section that uses {class_name}"


def test_the_readmes_example_is_the_example_dags_code() -> None:
    readme = (ROOT / "README.md").read_text()
    example = ROOT / "example_dags" / "feldera_stop_task.py"
    (imports,) = [x for x in example.read_text().splitlines() if "import FelderaStopPipelineOperator" in x]
    code = f"{imports}\n\n{section(example, 'operator')}"
    assert f"```python\n{code}\n```" in readme


def test_the_readme_stays_short() -> None:
    assert len((ROOT / "README.md").read_text().splitlines()) < 200


def github_anchor(heading: str) -> str:
    """The id GitHub (and ``mkdocs.yml``'s toc slugify) gives a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


@pytest.mark.parametrize("page", ["README.md", "SECURITY.md", "CHANGELOG.md"])
def test_the_top_level_pages_link_to_files_and_headings_that_exist(page: str) -> None:
    """MkDocs checks the links between docs pages; these pages live outside docs/."""
    text = (ROOT / page).read_text()
    links = re.findall(r"\]\((?!https?://|mailto:)([^)#\s]*)(?:#([^)\s]+))?\)", text)
    assert links or page == "CHANGELOG.md"
    for target, anchor in links:
        path = (ROOT / page).parent / target if target else ROOT / page
        assert path.exists(), f"{page} links to {target}, which does not exist"
        if anchor:
            headings = re.findall(r"^#+ (.+)$", path.read_text(), re.MULTILINE)
            assert anchor in {github_anchor(h) for h in headings}, f"{page}: no #{anchor} in {target}"
