"""Index folders: building them (local or Ray engine), their generations, the SQLite catalog and the chunk stores."""
