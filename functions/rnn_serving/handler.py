"""rnn_serving (FunctionBench rnn_generate_character_level, PyTorch): a two-layer
character LSTM whose weights are loaded with torch.load at import; each request
generates N characters greedily after the prefix and answers the text.

Payload: {"prefix": "...", "n": N}.
"""
import os

import torch

import model

torch.set_num_threads(1)
APP = os.path.dirname(os.path.abspath(__file__))
NET = model.CharLSTM()
NET.load_state_dict(torch.load(os.path.join(APP, "weights.pt")))
NET.eval()
INDEX = {c: i for i, c in enumerate(model.ALPHABET)}


def handle(event):
    prefix = "".join(c for c in event.get("prefix", "the ").lower() if c in INDEX) or "a"
    n = int(event.get("n", 16))
    with torch.no_grad():
        logits, state = NET(torch.tensor([[INDEX[c] for c in prefix]]))
        out = []
        nxt = int(logits[0, -1].argmax())
        for _ in range(n):
            out.append(model.ALPHABET[nxt])
            logits, state = NET(torch.tensor([[nxt]]), state)
            nxt = int(logits[0, -1].argmax())
    return {"prefix": prefix, "text": "".join(out)}
