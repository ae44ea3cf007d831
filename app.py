"""The chat UI: `python app.py` (same as `rag serve`). Settings come from RAG_* environment variables."""

import os

from rag.config import Config
from rag.ui import serve

if __name__ == "__main__":
    auth = os.environ.get("RAG_AUTH")
    serve(
        Config.from_env(),
        host=os.environ.get("RAG_HOST", "127.0.0.1"),
        port=int(os.environ.get("RAG_PORT", "7860")),
        auth=tuple(auth.split(":", 1)) if auth else None,
    )
