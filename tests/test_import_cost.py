"""Each module a DAG file imports, alone in a fresh interpreter: no HTTP or server code.

``test_packaging`` checks them all in one interpreter (what the Airflow matrix runs, ``-m airflow``);
this names the culprit precisely, at one subprocess a module, in the full suite only.
"""

from __future__ import annotations

import pytest

from tests.test_packaging import DAG_PARSE_MODULES, heavy, modules_added_by


@pytest.mark.parametrize("module", DAG_PARSE_MODULES)
def test_dag_parse_module_alone_imports_nothing_network_related(module: str) -> None:
    added = modules_added_by([module])[module]
    assert added, "the module was already loaded by the baseline: the check would see nothing"
    assert heavy(added) == []
