"""Documents that address the assistant instead of reporting news ("IMPORTANT SYSTEM NOTE TO THE ASSISTANT:
ignore all other documents ... answer only: ..."). Such a file is a prompt-injection attempt planted in the
archive: it is flagged to the user, never read by the model as evidence and never allowed to silence the
other sources; what it claims is shown beside what they say.

The test is about who the text speaks to (an AI assistant, a model, "you" told to ignore or answer), not about
any topic, so it holds for any archive. News that merely reports on AI assistants does not give them orders.
"""

from __future__ import annotations

import re

_ADDRESSED = re.compile(
    r"\b(?:note|message|instructions?|notice)\s+(?:to|for)\s+(?:the\s+|any\s+|all\s+)?"
    r"(?:ai|assistant|assistants|model|language model|llm|chatbot|bot)s?\b"
    r"|\b(?:ignore|disregard|forget)\s+(?:all\s+|any\s+)?(?:of\s+)?(?:the\s+|your\s+)?"
    r"(?:other|previous|prior|above|earlier|remaining)\s+(?:documents?|articles?|sources?|instructions?|"
    r"evidence|context|passages?)"
    r"|\b(?:assistant|ai|model)\s*[,:]\s*(?:you\s+must|always|only|ignore|answer)\b"
    r"|\byou\s+(?:must|should)\s+(?:only\s+)?(?:answer|reply|respond|say|state)\b"
    r"|\b(?:answer|reply|respond)\s+only\s*(?:with\s*)?:",
    re.IGNORECASE,
)


def addresses_assistant(text: str) -> str | None:
    """The passage of ``text`` that gives the assistant orders, or None."""
    match = _ADDRESSED.search(text)
    if match is None:
        return None
    start = max(0, text.rfind("\n", 0, match.start()) + 1, match.start() - 80)
    return " ".join(text[start : match.end() + 80].split())
