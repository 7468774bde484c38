"""Per-symbol risk: a 1–100 score from alerts, bars and listing facts, with its reasons."""
