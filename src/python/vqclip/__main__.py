"""`python -m vqclip ...` is the `vqclip` command."""

from ._launcher import main

main()
