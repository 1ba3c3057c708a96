"""The import order of docs/architecture.md holds: no module imports from a layer below its own."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "proxkit"


def layers() -> dict[str, int]:
    text = (ROOT / "docs" / "architecture.md").read_text()
    section = text.split("## Import order", 1)[1].split("\n## ", 1)[0]
    order = [re.findall(r"`([\w.]+)`", line) for line in section.splitlines() if re.match(r"\d+\. ", line)]
    return {room: level for level, rooms in enumerate(order) for room in rooms}


def room_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_every_import_goes_to_its_own_layer_or_a_lower_one():
    level = layers()
    rooms = {path.relative_to(PACKAGE).parts[0].removesuffix(".py") for path in PACKAGE.rglob("*.py")}
    assert rooms <= set(level), f"rooms missing from docs/architecture.md: {sorted(rooms - set(level))}"
    upward = []
    for path in sorted(PACKAGE.rglob("*.py")):
        room = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
        for node in ast.walk(ast.parse(path.read_text())):
            names = [node.module] if isinstance(node, ast.ImportFrom) and node.module else []
            names += [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
            for name in names:
                if name.startswith("proxkit.") and level[room_of(name)] > level[room]:
                    upward.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not upward, "\n".join(upward)
