"""vqclip from Python: the same runs as the `vqclip` command, for notebooks.

    import vqclip
    r = vqclip.generate("a red circle on a blue background", preset="demo", steps=50)
    r.image          # PIL image of final.png (needs pillow); in Jupyter `r` alone shows it
    r.log[-1]        # the last row of log.jsonl
    vqclip.classify(["cat.jpg"], labels="cat|dog")
    vqclip.search("photos/", query="a red car")

The binary is the one implementation: these functions build its command line (settings go in as a TOML file named
like the command line's keys) and read what it wrote. A usage mistake raises UsageError, a failed run RunError, both
with the command's one-line message.
"""

__version__ = "0.0.0"  # scripts/build-wheel writes Cargo.toml's version here

from ._api import Result, RunError, UsageError, VqclipError, classify, command, generate, search

__all__ = ["Result", "RunError", "UsageError", "VqclipError", "classify", "command", "generate", "search"]
