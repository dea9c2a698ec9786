"""Wiegand readers: D0/D1 edges -> bits -> 26/34-bit cards and keypad keys."""
