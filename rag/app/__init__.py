"""Ways in for people: the `rag` command and the chat UI. They translate; the logic lives below."""
