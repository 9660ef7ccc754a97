"""Every module imports on its own, whatever was imported before it: an import cycle that only
breaks in one order (a script importing the scoring service first, say) fails here."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("plugin", "connectors", "scoring", "webhooks")

SCRIPT = """
import importlib, sys
failed = []
for name in sys.argv[1:]:
    # The models (plugin.db) import nothing of the services above them, so they stay loaded, and
    # are re-imported only when a module of plugin.db is the one tested: mapping them is the
    # largest cost of a fresh import.
    keep = "-" if name.startswith("plugin.db") else "plugin.db."
    for loaded in [m for m in sys.modules if m.split(".")[0] in {packages!r}]:
        if not loaded.startswith(keep):
            del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except Exception as exc:
        failed.append(f"{{name}}: {{type(exc).__name__}}: {{exc}}")
print("\\n".join(failed))
sys.exit(1 if failed else 0)
"""


def test_each_module_imports_first() -> None:
    modules = sorted(
        ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for package in PACKAGES
        for path in (ROOT / package).rglob("*.py")
        if "migrations" not in path.parts
    )
    assert len(modules) > 50
    # Each module re-imports the project from nothing: split the list over the machine's cores.
    chunks = max(1, os.cpu_count() or 1)
    running = [
        subprocess.Popen(
            [sys.executable, "-c", SCRIPT.format(packages=set(PACKAGES)), *modules[i::chunks]],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        for i in range(chunks)
    ]
    for proc in running:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, out + err[-2000:]
