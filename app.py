"""The chat UI: `python app.py [--host H] [--port P] [--index-dir DIR] ...` is `rag serve` with the same flags.
Settings come from the flags, then RAG_* variables (and Gradio's GRADIO_SERVER_NAME/GRADIO_SERVER_PORT)."""

import sys

from rag.app.cli import main

if __name__ == "__main__":
    sys.exit(main(["serve", *sys.argv[1:]]))
