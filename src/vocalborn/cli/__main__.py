"""`python -m vocalborn.cli`, as the `vocalborn` script (`vocalborn up` starts its children so)."""

from vocalborn.cli import main

main()
