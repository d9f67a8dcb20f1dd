"""A character-level LSTM language model, shared by gen_data.py and handler.py."""
import torch
from torch import nn

ALPHABET = "abcdefghijklmnopqrstuvwxyz .,"


class CharLSTM(nn.Module):
    def __init__(self, hidden=128):
        super().__init__()
        self.embed = nn.Embedding(len(ALPHABET), 32)
        self.lstm = nn.LSTM(32, hidden, num_layers=2, batch_first=True)
        self.out = nn.Linear(hidden, len(ALPHABET))

    def forward(self, x, state=None):
        y, state = self.lstm(self.embed(x), state)
        return self.out(y), state
