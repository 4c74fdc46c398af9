"""docs/nodes.md is generated from the nodes' schemas (``python -m workshop.make_docs``): it must
match what the current schemas give; the README's node list must name every node, and what it counts and names
must be true."""
from __future__ import annotations

from workshop import make_docs


def test_node_docs_are_current(host):
    current = make_docs.NODES_MD.read_text(encoding="utf-8") if make_docs.NODES_MD.is_file() else ""
    assert current == make_docs.render_nodes(host), \
        "docs/nodes.md is out of date with the node schemas: run python -m workshop.make_docs"


def test_readme_names_every_node(host):
    missing = make_docs.missing_from_readme(host)
    assert not missing, f"README.md's node list does not name (in bold): {', '.join(missing)}"


def test_the_readme_states_only_what_is_true(host, tmp_path):
    """The README's counts of templates, workflows and nodes are the pack's, and every template and workflow it
    names ships; the check fails on the README as it was at issue 79's filing ("34 of the 37 shipped workflows",
    with 46 shipping)."""
    assert make_docs.readme_untruths(host) == []
    stale = tmp_path / "README.md"
    stale.write_text("On an H100, 34 of the 37 shipped workflows passed; open **Flux - Repaint** or `p2p_magic`.\n"
                     "| x | `no_such_workflow` |\n", encoding="utf-8")
    said = make_docs.readme_untruths(host, stale)
    assert len(said) == 3 and "says 37 workflows" in said[0], said


def test_the_technique_tables_are_written_from_the_technique_table(host):
    for path, text in make_docs.technique_pages(host).items():
        assert path.read_text(encoding="utf-8") == text, \
            f"{path.name}'s technique table is out of date with invertedit/techniques/: run python -m workshop.make_docs"
