"""The chat bot: questions in Chinese or English, answered from the mirrored ERP data for the asker.

``services.ask()`` is the one entry point (API, dev inbox, IM platforms). It parses the text with the
deterministic parser (``parser.py``), then an answer module (``answers/``) builds the reply through
the same selectors as the pages, so ``restrict()``/``authorize()`` decide what the bot may say.
"""
