"""The book layer: what the chapters share, kept out of the core library.

``lstm_zero_lib.book.synthetic`` (seeded data sets with known truth),
``lstm_zero_lib.book.train`` (seeding, device choice, training loop),
``lstm_zero_lib.book.plotting`` (the book's theme and shared figures),
``lstm_zero_lib.book.benchmark`` (speed measurements) and ``lstm_zero_lib.book.models``
(the models several chapters train). It needs the ``book`` extra
(``pip install 'lstm-zero-lib[book]'``); the core (``import lstm_zero_lib``) never
imports it.
"""
