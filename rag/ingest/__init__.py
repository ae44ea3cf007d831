"""From files to text with exact offsets: reading, cleaning of page chrome, chunking, near-duplicate grouping."""
