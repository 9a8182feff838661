"""newsqa: question answering over news articles, with the passages each answer cites.

The product's three parts live at the top of the repository and are installed under this one name:
``newsqa.index`` (build side), ``newsqa.retrieval`` (query side) and ``newsqa.bot`` (front ends).
Imports run one way: bot → retrieval → index.
"""

__version__ = "0.1.0"
