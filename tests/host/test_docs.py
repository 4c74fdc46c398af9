"""docs/nodes.md is generated from the nodes' schemas (``python -m workshop.make_docs``): it must
match what the current schemas give, and the README's one-line node list must name every node."""
from __future__ import annotations

from workshop import make_docs


def test_node_docs_are_current(host):
    current = make_docs.NODES_MD.read_text(encoding="utf-8") if make_docs.NODES_MD.is_file() else ""
    assert current == make_docs.render_nodes(host), \
        "docs/nodes.md is out of date with the node schemas: run python -m workshop.make_docs"


def test_readme_names_every_node(host):
    missing = make_docs.missing_from_readme(host)
    assert not missing, f"README.md's node list does not name (in bold): {', '.join(missing)}"


def test_the_technique_tables_are_written_from_the_technique_table(host):
    for path, text in make_docs.technique_pages(host).items():
        assert path.read_text(encoding="utf-8") == text, \
            f"{path.name}'s technique table is out of date with invertedit/techniques/: run python -m workshop.make_docs"
