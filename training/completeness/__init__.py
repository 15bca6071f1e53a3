"""How the completeness model (alice_voice/speech/completeness.py) is built and judged: a grammar of
voice-assistant requests (grammar.py), the trainer (train.py), and hand-written held-out sets scored by
evaluate.py. README.md has the recipe and the numbers."""
