"""News from the web: fetch pages politely (fetch.py), turn them into articles (extract.py), keep
them between builds (library.py), read feeds (feeds.py) and add all of it to the index (ingest.py).

Nothing is imported here: the build reads the library without paying for the HTTP client and the
extractor, which only `newsqa index add` and `newsqa feeds` need.
"""
