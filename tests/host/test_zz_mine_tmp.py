import sys
sys.path.insert(0, "/work/main/tests/host")
import test_workflows as tw
from test_workflows import *  # noqa: F401,F403  fixtures


def test_mine(host, runner, tmp_path, monkeypatch):
    mine = [p for p in tw.CHECKPOINT_FILES if any(t in p.stem for t in ("DreamBooth", "Textual", "Custom"))]
    assert len(mine) == 6
    # the names' checks run on the whole list; the per-file loop on mine only
    class Files(list):
        def __iter__(self):
            import inspect
            caller = inspect.stack()[1]
            return iter(mine if "for path in CHECKPOINT_FILES" in (caller.code_context or [""])[0] else list.__iter__(self))
    monkeypatch.setattr(tw, "CHECKPOINT_FILES", Files(tw.CHECKPOINT_FILES))
    tw.test_checkpoint_workflows_are_set_for_their_family(host, runner, tmp_path)
