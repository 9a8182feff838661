"""Query side of newsqa: load an index folder, search it, and compose cited answers.

Pure Python: nothing here imports web or Telegram code.
"""
