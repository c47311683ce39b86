"""Every package folder is listed in pyproject.toml, so a (non-editable) wheel holds it too."""

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_package_is_listed():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    setuptools = project["tool"]["setuptools"]
    listed = set(setuptools["packages"])
    dirs = setuptools["package-dir"]
    found = set()
    for name, folder in dirs.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder)
            found.add(".".join([name, *rel.parts]))
    # sub-packages of zohw that live under ./zohw itself
    assert found <= listed, f"not listed in pyproject.toml: {sorted(found - listed)}"
    assert {"zohw.hw", "zohw.sw", "zohw.sim"} <= listed
