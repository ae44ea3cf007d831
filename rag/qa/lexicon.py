"""Word lists the answering steps read, each in one place with what it is for."""

from __future__ import annotations

import re

# Words by which a sentence points at someone named earlier ("the US President wrote", "she said"): a "who"
# answer made of such a sentence needs the sentence that names them.
REFERRING = re.compile(
    r"\b(he|she|they|the (?:\w+ ){0,2}(?:president|senator|minister|official|spokesman|spokeswoman|leader|"
    r"secretary|envoy|ambassador|governor|mayor|chief|head|source|author))\b",
    re.IGNORECASE,
)
